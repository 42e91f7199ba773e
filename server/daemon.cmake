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

# The daemon: build/<preset>/server/squalld. It needs GroupNode's implementation in
# squall_group; until that is part of the tree, the daemon and its end-to-end tests are skipped.
get_target_property(squall_group_sources squall_group SOURCES)
if(squall_group_sources MATCHES "group_node.cpp")
  add_executable(squalld
    ${CMAKE_CURRENT_LIST_DIR}/node.cpp
    ${CMAKE_CURRENT_LIST_DIR}/signals.cpp
    ${CMAKE_CURRENT_LIST_DIR}/squalld_main.cpp)
  target_include_directories(squalld PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(squalld PRIVATE squall_server squall_group CLI11::CLI11)
endif()
