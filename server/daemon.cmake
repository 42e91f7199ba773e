# squalld's node (docs/consistency.md): the replicated KvBackend over the shards' groups,
# read barriers, forwarding to other shards' members. Part of squall_server.
target_sources(squall_server PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/forward_codec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/forwarder.cpp
  ${CMAKE_CURRENT_LIST_DIR}/list_merge.cpp
  ${CMAKE_CURRENT_LIST_DIR}/replicated_backend.cpp
  ${CMAKE_CURRENT_LIST_DIR}/replicated_reads.cpp
  ${CMAKE_CURRENT_LIST_DIR}/shard_replica.cpp)
# GCC 12 reports a false maybe-uninitialized in std::variant inside Result<HttpResponse>.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/forwarder.cpp
  PROPERTIES COMPILE_OPTIONS -Wno-maybe-uninitialized)
