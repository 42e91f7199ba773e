# Multi-process SST/SMC (and RDMC) tests over libfabric (included from CMakeLists.txt here).
# The node programs are separate executables; the drivers (tests here, benchmarks in bench/sst
# and bench/rdmc) spawn them through squall_sst_driver (sst_process, sst_cluster).
set(SQUALL_SST_INTEGRATION_DIR ${CMAKE_CURRENT_LIST_DIR})

add_library(squall_sst_driver STATIC
  ${SQUALL_SST_INTEGRATION_DIR}/sst_process.cpp
  ${SQUALL_SST_INTEGRATION_DIR}/sst_cluster.cpp)
target_include_directories(squall_sst_driver PUBLIC ${SQUALL_SST_INTEGRATION_DIR}
                                                    ${PROJECT_SOURCE_DIR})
target_link_libraries(squall_sst_driver PUBLIC squall_common nlohmann_json::nlohmann_json)

add_executable(sst_node
  ${SQUALL_SST_INTEGRATION_DIR}/sst_node.cpp
  ${SQUALL_SST_INTEGRATION_DIR}/sst_node_io.cpp
  ${SQUALL_SST_INTEGRATION_DIR}/sst_node_workloads.cpp)
target_link_libraries(sst_node PRIVATE squall_sst nlohmann_json::nlohmann_json CLI11::CLI11)

squall_test(test_sst_libfabric
  SOURCES ${SQUALL_SST_INTEGRATION_DIR}/sst_driver_test.cpp
  LIBS squall_sst_driver)
target_compile_definitions(test_sst_libfabric PRIVATE
  SQUALL_SST_NODE_PATH="$<TARGET_FILE:sst_node>")
add_dependencies(test_sst_libfabric sst_node)
