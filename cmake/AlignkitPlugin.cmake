# alignkit_add_plugin(NAME SOURCES src... [LINK_LIBRARIES lib...] [NO_INSTALL])
#
# Builds one plugin: a shared library that exports `alignkit_plugin_entry` (written by the
# ALIGNKIT_PLUGIN macro) and links the SDK. Inside the alignkit tree the library lands in the
# build tree's plugin folder, where the host looks; out of tree it lands in the caller's build
# folder, to be named by ALIGNKIT_PLUGIN_PATH or a recipe's [plugins] paths.
function(alignkit_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL" "" "SOURCES;LINK_LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "alignkit_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  if(TARGET alignkit_sdk)
    target_link_libraries(${name} PRIVATE alignkit_sdk ${ARG_LINK_LIBRARIES})
  else()
    target_link_libraries(${name} PRIVATE alignkit::sdk ${ARG_LINK_LIBRARIES})
  endif()
  target_compile_features(${name} PRIVATE cxx_std_20)
  # Only the entry point is exported; everything else stays private to the plugin.
  set_target_properties(${name} PROPERTIES
    PREFIX "lib" CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  set_property(GLOBAL APPEND PROPERTY ALIGNKIT_PLUGINS ${name})
  if(DEFINED ALIGNKIT_PLUGIN_OUTPUT_DIR)
    # Installed plugins sit in <libdir>/alignkit/plugins, two levels below the SDK library.
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ALIGNKIT_PLUGIN_OUTPUT_DIR}"
      INSTALL_RPATH "$ORIGIN/../..")
    if(NOT ARG_NO_INSTALL)
      install(TARGETS ${name} LIBRARY DESTINATION ${ALIGNKIT_PLUGIN_SUBDIR})
    endif()
  endif()
endfunction()
