# Tests of the libfabric transport and its bootstrap (included from CMakeLists.txt here).
# test_fabric_libfabric holds the in-process tests and the multi-process driver; the driver
# runs fabric_node (test/integration/fabric_node.cpp) as separate processes.
squall_test(test_fabric_libfabric
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/libfabric_loopback_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/libfabric_wire_test.cpp
  LIBS squall_fabric)
