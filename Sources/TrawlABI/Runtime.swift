/// The Swift toolchain that compiled this module, as `trawl_plugin.runtime` names it
/// ("swift-6.3"). The Swift runtime has no stable ABI on Linux, so a Swift plugin loads only
/// into a trawl built by the same toolchain. This module is compiled into each side by its
/// own compiler: in trawl it names trawl's toolchain, in a plugin the plugin's.
public let swiftRuntimeName: String = {
    #if compiler(>=6.5)
    return "swift-6.5"
    #elseif compiler(>=6.4)
    return "swift-6.4"
    #elseif compiler(>=6.3)
    return "swift-6.3"
    #elseif compiler(>=6.2)
    return "swift-6.2"
    #elseif compiler(>=6.1)
    return "swift-6.1"
    #else
    return "swift-6.0"
    #endif
}()
