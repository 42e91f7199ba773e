# Tests of the libfabric transport and its bootstrap (included from CMakeLists.txt here).
# test_fabric_libfabric holds the in-process tests and the multi-process driver; the driver
# runs fabric_node (test/integration/fabric_node.cpp) as separate processes.
add_executable(fabric_node ${PROJECT_SOURCE_DIR}/test/integration/fabric_node.cpp)
target_link_libraries(fabric_node PRIVATE squall_fabric)
target_include_directories(fabric_node PRIVATE ${PROJECT_SOURCE_DIR})

squall_test(test_fabric_libfabric
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/libfabric_loopback_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/libfabric_channels_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/libfabric_wire_test.cpp
          ${PROJECT_SOURCE_DIR}/test/integration/fabric_driver_test.cpp
  LIBS squall_fabric)
target_compile_definitions(test_fabric_libfabric
  PRIVATE SQUALL_FABRIC_NODE="$<TARGET_FILE:fabric_node>")
add_dependencies(test_fabric_libfabric fabric_node)
