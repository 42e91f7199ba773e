// Merging paginated key listings from several sources (the pools of a shard, the shards of
// the layout) into one page in byte order (docs/api.md, list pagination).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "server/kv_backend.hpp"

namespace squall::server {

// One source's page: keys ascending, all after the request's start_after; `next` set when the
// source may hold keys after its last examined one (pass as start_after to continue).
struct ListSource {
  std::vector<ListItem> items;
  std::optional<std::string> next;
};

// The first `limit` (>= 1) keys of the union, with a `next` such that listing again from it
// misses nothing: a source that stopped early cuts the page at its `next`, since keys beyond
// it are unknown. `next` is none exactly when every source is exhausted and nothing was cut.
ListResult merge_list_pages(std::vector<ListSource> sources, std::size_t limit);

}  // namespace squall::server
