# bench_watch: watch hub memory per watcher and fan-out cost (docs/watch.md, "Figures").
# Included from bench/kvstore/CMakeLists.txt.
if(NOT TARGET bench_watch)
  add_executable(bench_watch ${CMAKE_CURRENT_LIST_DIR}/watch_bench.cpp)
  target_link_libraries(bench_watch PRIVATE squall_kvstore CLI11::CLI11)
endif()
