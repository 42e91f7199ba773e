# The real-mode node of the group (docs/core.md, "Running a node"): the membership service
# over TCP, founding/joining/leaving, one libfabric transport per view. A target of its own so
# that simulations link squall_core without Boost.Asio sockets or libfabric transports.
add_library(squall_group
  ${CMAKE_CURRENT_LIST_DIR}/group_node.cpp
  ${CMAKE_CURRENT_LIST_DIR}/group_node_join.cpp
  ${CMAKE_CURRENT_LIST_DIR}/group_node_restart.cpp
  ${CMAKE_CURRENT_LIST_DIR}/membership_service.cpp
  ${CMAKE_CURRENT_LIST_DIR}/membership_wire.cpp)
target_include_directories(squall_group PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(squall_group PUBLIC squall_core squall_config squall_fabric
  PRIVATE Boost::headers Threads::Threads)
