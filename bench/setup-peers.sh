#!/usr/bin/env bash
# Installs sluice-bench's peers into bench/.venv: Apache Spark (pyspark 3.5, the last line
# with DStreams) and Apache Flink (apache-flink 2.3) from PyPI, matplotlib for the plots,
# and a Java 17 runtime from Debian where none is present. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
python3 -c "import ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] || ../scripts/apt-install.sh setup-peers "${missing[@]}"
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c "import pyspark, pyflink, matplotlib" >/dev/null 2>&1; then
  echo "setup-peers: installing pyspark, apache-flink and matplotlib into bench/.venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "pyspark==3.5.*" "apache-flink==2.3.*" matplotlib
fi
.venv/bin/python -c "import pyspark, pyflink.version; print('setup-peers: pyspark', pyspark.__version__, '/ apache-flink', pyflink.version.__version__)"
