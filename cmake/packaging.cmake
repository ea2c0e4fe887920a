# Debian packages (CPack DEB, one package per component). Included last by the top-level
# CMakeLists.txt so every target exists. `cpack -G DEB` in a build dir writes
#   corridor_<version>_<arch>.deb       the vehicle appliance
#   corridor-hub_<version>_<arch>.deb   the data-center end: tunnel hub, NAT script, collector
# Layout, maintainer scripts and units: packaging/README.md; operators: docs/operations.md.

set(CORRIDOR_PKG_DIR ${PROJECT_SOURCE_DIR}/packaging)

# --- version -------------------------------------------------------------------------------
# <project version>+git<commits>.<hash>: the commit count makes every later build of the same
# project version sort higher for dpkg (a hash alone does not sort), so upgrades along main work.
set(CORRIDOR_PKG_VERSION "" CACHE STRING "Debian package version (default: project version + git)")
if(NOT CORRIDOR_PKG_VERSION)
  set(_pkg_version ${PROJECT_VERSION})
  find_package(Git QUIET)
  if(GIT_FOUND AND EXISTS ${PROJECT_SOURCE_DIR}/.git)
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-list --count HEAD
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE _git_count
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _git_rc1)
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=8 HEAD
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE _git_hash
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _git_rc2)
    if(_git_rc1 EQUAL 0 AND _git_rc2 EQUAL 0 AND _git_count AND _git_hash)
      set(_pkg_version "${PROJECT_VERSION}+git${_git_count}.${_git_hash}")
    endif()
  endif()
  set(CORRIDOR_PKG_VERSION_EFFECTIVE ${_pkg_version})
else()
  set(CORRIDOR_PKG_VERSION_EFFECTIVE ${CORRIDOR_PKG_VERSION})
endif()

# --- architecture from the compiler (cross builds: ci/toolchain-aarch64.cmake) ---------------
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _proc)
if(_proc MATCHES "^(aarch64|arm64)$")
  set(CORRIDOR_DEB_ARCH arm64)
  set(CORRIDOR_MULTIARCH aarch64-linux-gnu)
elseif(_proc MATCHES "^(x86_64|amd64)$")
  set(CORRIDOR_DEB_ARCH amd64)
  set(CORRIDOR_MULTIARCH x86_64-linux-gnu)
elseif(_proc MATCHES "^arm")
  set(CORRIDOR_DEB_ARCH armhf)
  set(CORRIDOR_MULTIARCH arm-linux-gnueabihf)
else()
  message(WARNING "packaging: unknown processor ${CMAKE_SYSTEM_PROCESSOR}; asking dpkg")
  execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE CORRIDOR_DEB_ARCH
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()

# --- install rules ---------------------------------------------------------------------------
# The subdirectories' own install(TARGETS) rules land in the "Unspecified" component, which no
# package takes (CPACK_COMPONENTS_ALL below); these rules say which package owns what.
install(TARGETS corridor RUNTIME DESTINATION bin COMPONENT corridor)
install(FILES ${CORRIDOR_PKG_DIR}/systemd/corridor.service DESTINATION /lib/systemd/system
        COMPONENT corridor)
install(FILES ${CORRIDOR_PKG_DIR}/etc/corridor.json DESTINATION /etc/corridor COMPONENT corridor)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/configuration.md
              ${PROJECT_SOURCE_DIR}/docs/tunnel.md
        DESTINATION share/doc/corridor COMPONENT corridor)
install(FILES ${PROJECT_SOURCE_DIR}/docs/examples/corridor.json DESTINATION share/doc/corridor/examples
        COMPONENT corridor)

install(TARGETS corridor-hub corridor-collector RUNTIME DESTINATION bin COMPONENT hub)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/agg/hub/nat.sh DESTINATION lib/corridor COMPONENT hub)
install(FILES ${CORRIDOR_PKG_DIR}/systemd/corridor-hub.service
              ${CORRIDOR_PKG_DIR}/systemd/corridor-collector.service
        DESTINATION /lib/systemd/system COMPONENT hub)
install(FILES ${CORRIDOR_PKG_DIR}/etc/hub.json DESTINATION /etc/corridor-hub COMPONENT hub)
install(FILES ${CORRIDOR_PKG_DIR}/etc/default-corridor-hub DESTINATION /etc/default
        RENAME corridor-hub COMPONENT hub)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/tunnel.md
              ${PROJECT_SOURCE_DIR}/docs/telemetry.md
        DESTINATION share/doc/corridor-hub COMPONENT hub)

# --- CPack -----------------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME corridor)
set(CPACK_PACKAGE_VENDOR "corridor project")
set(CPACK_PACKAGE_CONTACT "corridor maintainers <corridor@localhost>")
set(CPACK_PACKAGE_VERSION ${CORRIDOR_PKG_VERSION_EFFECTIVE})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL corridor hub)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${CORRIDOR_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Stripped binaries: the appliance has 32 GB of flash, but debug info (~4x the code) buys
# nothing on a vehicle; keep the build dir's unstripped binaries for core dumps.
set(CPACK_STRIP_FILES ON)
# Maintainer scripts must be 0755 and data files 0644 whatever the checkout's umask was.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_CORRIDOR_PACKAGE_NAME corridor)
set(CPACK_DEBIAN_CORRIDOR_DESCRIPTION
    "bonded multi-modem uplink for trains and buses (appliance)\ncorridor bonds several cellular modems into one encrypted tunnel to a hub,\nlearns where each operator is good or bad and shifts traffic ahead of dead zones.")
set(CPACK_DEBIAN_HUB_PACKAGE_NAME corridor-hub)
set(CPACK_DEBIAN_HUB_DESCRIPTION
    "data-center end of the corridor bonded tunnel\ncorridor-hub terminates the vehicles' bonded tunnels (NAT via nftables);\ncorridor-collector receives their telemetry batches.")

# Maintainer scripts and the conffiles list live in packaging/debian/<package>/.
set(_dbg ${CORRIDOR_PKG_DIR}/debian)
set(CPACK_DEBIAN_CORRIDOR_PACKAGE_CONTROL_EXTRA
    "${_dbg}/corridor/conffiles;${_dbg}/corridor/postinst;${_dbg}/corridor/prerm;${_dbg}/corridor/postrm")
set(CPACK_DEBIAN_HUB_PACKAGE_CONTROL_EXTRA
    "${_dbg}/corridor-hub/conffiles;${_dbg}/corridor-hub/postinst;${_dbg}/corridor-hub/prerm;${_dbg}/corridor-hub/postrm")

# Runtime dependencies. dpkg-shlibdeps computes them from the binaries when it can: natively,
# and for cross builds when the target's libraries are installed multiarch (the :arm64 -dev
# packages CI installs) -- cpack then runs it with the target's multiarch directory. Without
# dpkg-shlibdeps (non-Debian build host) or with CORRIDOR_PKG_SHLIBDEPS=OFF the explicit lists
# below (bookworm package names) are used instead.
option(CORRIDOR_PKG_SHLIBDEPS "compute Depends with dpkg-shlibdeps" ON)
find_program(CORRIDOR_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(CORRIDOR_PKG_SHLIBDEPS AND CORRIDOR_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  # Cross: dpkg-shlibdeps reads DEB_HOST_ARCH/DEB_HOST_MULTIARCH (dpkg-architecture) to pick the
  # library directory and the :arm64 symbols files; packaging/cpack-project.cmake exports them.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS /usr/lib/${CORRIDOR_MULTIARCH})
else()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  set(CPACK_DEBIAN_CORRIDOR_PACKAGE_DEPENDS
      "libc6 (>= 2.36), libserialport0, libgps28, libsqlite3-0, libcurl4, libmicrohttpd12, libsodium23, libjansson4, liblz4-1, libzstd1, libmnl0, libnftables1, libsystemd0, libgpiod2")
  set(CPACK_DEBIAN_HUB_PACKAGE_DEPENDS
      "libc6 (>= 2.36), libsodium23, libjansson4, liblz4-1, libzstd1, libmicrohttpd12, libsqlite3-0")
endif()
# Not shared libraries, but what the units and scripts call (cpack appends the shlibdeps result
# to these). The hub's unit runs nat.sh, which needs nft, ip and sysctl.
if(CPACK_DEBIAN_HUB_PACKAGE_DEPENDS)
  string(APPEND CPACK_DEBIAN_HUB_PACKAGE_DEPENDS ", nftables, iproute2, procps")
else()
  set(CPACK_DEBIAN_HUB_PACKAGE_DEPENDS "nftables, iproute2, procps")
endif()
set(CPACK_DEBIAN_CORRIDOR_PACKAGE_RECOMMENDS "gpsd, iproute2, smartmontools")

# Evaluated by cpack itself (not at configure time): the release override for upgrade tests and
# the cross-build environment for dpkg-shlibdeps.
# (cpack only sees CPACK_* variables.)
set(CPACK_CORRIDOR_MULTIARCH ${CORRIDOR_MULTIARCH})
set(CPACK_CORRIDOR_ARCH ${CORRIDOR_DEB_ARCH})
set(CPACK_PROJECT_CONFIG_FILE ${CORRIDOR_PKG_DIR}/cpack-project.cmake)

include(CPack)
