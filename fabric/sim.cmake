target_sources(squall_fabric PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/transport.cpp)
