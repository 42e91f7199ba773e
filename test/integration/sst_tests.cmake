# Multi-process SST/SMC (and RDMC) tests over libfabric (included from CMakeLists.txt here).
# The node programs are separate executables; the drivers (tests here, benchmarks in bench/sst
# and bench/rdmc) spawn them through squall_sst_driver (sst_process, sst_cluster).
include(${CMAKE_CURRENT_LIST_DIR}/sst_targets.cmake)

squall_test(test_sst_libfabric
  SOURCES ${SQUALL_SST_INTEGRATION_DIR}/sst_driver_test.cpp
  LIBS squall_sst_driver)
target_compile_definitions(test_sst_libfabric PRIVATE
  SQUALL_SST_NODE_PATH="$<TARGET_FILE:sst_node>")
add_dependencies(test_sst_libfabric sst_node)

squall_test(test_rdmc_libfabric
  SOURCES ${SQUALL_SST_INTEGRATION_DIR}/rdmc_driver_test.cpp
  LIBS squall_sst_driver)
target_compile_definitions(test_rdmc_libfabric PRIVATE
  SQUALL_RDMC_NODE_PATH="$<TARGET_FILE:rdmc_node>")
add_dependencies(test_rdmc_libfabric rdmc_node)
