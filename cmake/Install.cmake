# `cmake --install BUILD --prefix P`: the library and the plot library, the
# headers of every built folder under P/include/r1kit/<folder>/ (so
# `#include "rewards/reward.h"` reads as inside the tree), the `r1kit` command,
# and a CMake package: a user's own reward library builds with
# find_package(r1kit) and links r1kit::r1kit (see examples/custom_reward/), a
# program that draws links r1kit::plot too. The package finds LibTorch the way this build did,
# through Python's torch wheel (cmake/Torch.cmake is installed with it).
if(NOT TARGET r1kit)
  return()
endif()
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(R1KIT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/r1kit)

# Consumers' code includes the headers, which use C++20.
target_compile_features(r1kit PUBLIC cxx_std_20)

foreach(folder IN LISTS R1KIT_FOLDERS)
  file(GLOB _headers ${CMAKE_SOURCE_DIR}/${folder}/*.h)
  install(FILES ${_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/r1kit/${folder})
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/apps/subcommand.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/r1kit/apps)

# Installed binaries find libr1kit beside them and LibTorch where they were linked.
set_target_properties(r1kit PROPERTIES INSTALL_RPATH "$ORIGIN" INSTALL_RPATH_USE_LINK_PATH ON)
install(TARGETS r1kit EXPORT r1kitTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(TARGET r1kit_plot)
  install(FILES ${CMAKE_SOURCE_DIR}/plot/plot.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/r1kit/plot)
  set_target_properties(r1kit_plot PROPERTIES INSTALL_RPATH "$ORIGIN" INSTALL_RPATH_USE_LINK_PATH ON)
  install(TARGETS r1kit_plot EXPORT r1kitTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
if(TARGET r1kit_cli)
  set_target_properties(r1kit_cli PROPERTIES
    INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}" INSTALL_RPATH_USE_LINK_PATH ON)
  install(TARGETS r1kit_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(EXPORT r1kitTargets NAMESPACE r1kit:: DESTINATION ${R1KIT_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/r1kitConfig.cmake.in
  ${CMAKE_BINARY_DIR}/r1kitConfig.cmake INSTALL_DESTINATION ${R1KIT_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_BINDIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/r1kitConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/r1kitConfig.cmake ${CMAKE_BINARY_DIR}/r1kitConfigVersion.cmake
  ${CMAKE_SOURCE_DIR}/cmake/Torch.cmake DESTINATION ${R1KIT_INSTALL_CMAKEDIR})
