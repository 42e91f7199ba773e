# libfabric implementation sources (verbs and tcp providers) and the TCP bootstrap.
# libfabric headers stay private to these sources (fabric/libfabric_impl.hpp).
target_sources(squall_fabric PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/bootstrap.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/bootstrap_listener.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/bootstrap_wire.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/libfabric.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/libfabric_connect.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/libfabric_data.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/libfabric_setup.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/libfabric_wire.cpp)
target_link_libraries(squall_fabric PRIVATE PkgConfig::LIBFABRIC Boost::headers Threads::Threads)
# Asio's scheduler trips GCC 12's -Wnull-dereference after inlining (a false positive inside
# the Boost headers); only the files that include Asio are exempted.
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/bootstrap.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/bootstrap_listener.cpp
  PROPERTIES COMPILE_OPTIONS -Wno-null-dereference)
