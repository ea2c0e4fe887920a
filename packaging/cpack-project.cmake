# Read by cpack at packaging time (CPACK_PROJECT_CONFIG_FILE), after CPackConfig.cmake.

# A higher Debian revision without reconfiguring: tests/pkg builds "the next version" of the
# same binaries this way to exercise a real upgrade (CORRIDOR_PKG_RELEASE=2 cpack -G DEB).
if(DEFINED ENV{CORRIDOR_PKG_RELEASE} AND NOT "$ENV{CORRIDOR_PKG_RELEASE}" STREQUAL "")
  set(CPACK_DEBIAN_PACKAGE_RELEASE "$ENV{CORRIDOR_PKG_RELEASE}")
endif()

# Cross builds: dpkg-shlibdeps takes the target architecture from dpkg-architecture's
# variables; with them it searches /usr/lib/<multiarch> and reads the :arm64 packages' symbols
# files, and uses <triplet>-objdump. Natively they are left alone.
execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE _build_arch
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(CPACK_CORRIDOR_ARCH AND _build_arch AND NOT CPACK_CORRIDOR_ARCH STREQUAL _build_arch)
  set(ENV{DEB_HOST_ARCH} ${CPACK_CORRIDOR_ARCH})
  set(ENV{DEB_HOST_MULTIARCH} ${CPACK_CORRIDOR_MULTIARCH})
  set(ENV{DEB_HOST_GNU_TYPE} ${CPACK_CORRIDOR_MULTIARCH})
endif()
