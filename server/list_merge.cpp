#include "server/list_merge.hpp"

#include <algorithm>

#include "common/assert.hpp"

namespace squall::server {

ListResult merge_list_pages(std::vector<ListSource> sources, std::size_t limit) {
  SQUALL_ASSERT(limit >= 1, "list limit 0");
  std::optional<std::string> cut;
  for (const ListSource& source : sources) {
    if (source.next && (!cut || *source.next < *cut)) cut = source.next;
  }
  std::vector<ListItem> items;
  for (ListSource& source : sources) {
    for (ListItem& item : source.items) {
      if (cut && item.key > *cut) break;  // sources are ascending
      items.push_back(std::move(item));
    }
  }
  std::sort(items.begin(), items.end(),
            [](const ListItem& a, const ListItem& b) { return a.key < b.key; });
  ListResult result;
  if (items.size() > limit) {
    items.resize(limit);
    result.next = items.back().key;
  } else if (cut) {
    result.next = (items.size() == limit) ? items.back().key : *cut;
  }
  result.items = std::move(items);
  return result;
}

}  // namespace squall::server
