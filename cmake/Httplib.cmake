# cpp-httplib for the `http` reward and its test. Debian's libcpp-httplib-dev
# ships a compiled library with a pkg-config file and no CMake package; its -D
# flags change class layouts, so they go on the two files that include
# httplib.h, which skip the precompiled header. Without it the `http` reward
# still registers and says at start-up that this build lacks it.
if(TARGET r1kit AND "rewards" IN_LIST R1KIT_FOLDERS)
  set(_httplib_cflags "")
  set(_httplib_libs "")
  if(TARGET httplib::httplib)
    set(_httplib_libs httplib::httplib)
  else()
    pkg_check_modules(CPP_HTTPLIB QUIET cpp-httplib)
    if(CPP_HTTPLIB_FOUND)
      set(_httplib_cflags ${CPP_HTTPLIB_CFLAGS})
      set(_httplib_libs ${CPP_HTTPLIB_LINK_LIBRARIES})
    endif()
  endif()
  if(_httplib_libs)
    message(STATUS "r1kit: cpp-httplib found; the http reward is built")
    target_link_libraries(r1kit PRIVATE ${_httplib_libs})
    set(_httplib_sources rewards/http_reward.cpp)
    if(TARGET tests_rewards)
      target_link_libraries(tests_rewards PRIVATE ${_httplib_libs})
      list(APPEND _httplib_sources tests/rewards/http_reward_test.cpp)
    endif()
    set_source_files_properties(${_httplib_sources} PROPERTIES
      COMPILE_OPTIONS "${_httplib_cflags}" COMPILE_DEFINITIONS R1KIT_WITH_HTTPLIB=1
      SKIP_PRECOMPILE_HEADERS ON)
  else()
    message(STATUS "r1kit: cpp-httplib not found; the http reward reports that at start-up")
  endif()
endif()
