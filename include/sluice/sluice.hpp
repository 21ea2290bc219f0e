#pragma once
/// @file sluice.hpp
/// @brief Everything a user of the library includes.

#include "sluice/backend.hpp"
#include "sluice/clock.hpp"
#include "sluice/codec.hpp"
#include "sluice/column.hpp"
#include "sluice/context.hpp"
#include "sluice/dstream.hpp"
#include "sluice/log.hpp"
#include "sluice/metrics.hpp"
#include "sluice/source.hpp"
#include "sluice/stream_graph.hpp"
#include "sluice/table_ops.hpp"
#include "sluice/types.hpp"
