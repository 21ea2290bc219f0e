#!/usr/bin/env bash
# Installs what Sluice builds and tests with, where it is missing: Debian packages (the
# compilers, libraries, librdkafka and kcat) and the confluent-kafka Python client (an
# independent producer in the Kafka tests). Idempotent and quiet when everything is
# present. Needs root (or sudo) to install Debian packages.
set -euo pipefail
packages=(cmake g++ make pkg-config libyaml-cpp-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
          python3 librdkafka-dev kcat)
"$(dirname "$0")/apt-install.sh" setup-deps "${packages[@]}"
if ! python3 -c "import confluent_kafka" >/dev/null 2>&1; then
  echo "setup-deps: installing the confluent-kafka Python client" >&2
  python3 -m pip install -q confluent-kafka 2>/dev/null ||
    python3 -m pip install -q --break-system-packages confluent-kafka
fi
