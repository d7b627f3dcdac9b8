#if canImport(Glibc)
import Glibc
#endif

/// Running as root, a plugin is code that runs as root: refuse a library that someone else
/// could have replaced, as the dynamic loader's secure mode and sudo refuse theirs. A file,
/// or the directory it is in, writable by group or others is refused; so is any directory
/// above them writable by group or others without the sticky bit (which would let another
/// user rename the directory away and put theirs in its place). The sticky bit is enough
/// for the file's own directory too when the file was named, not found by a scan (others
/// may add files there, but not replace this one).
public enum PluginFileSecurity {
    /// Nil when `path` may be loaded; otherwise why not and how to fix it. `scanned`: the
    /// file was found by listing its directory, so whoever can add a file there chooses code.
    public static func problem(with named: String, scanned: Bool = true) -> String? {
        // What is loaded is where symbolic links lead.
        let path = PluginLoader.realPath(named) ?? named
        guard let file = status(path) else { return nil } // dlopen says why it cannot open it
        if let who = writers(file.st_mode) {
            return "trawl runs as root and \(path) is writable by \(who) (mode \(octal(file.st_mode))), "
                + "so anyone in it could run code as root; fix it with: chmod go-w \(path)"
        }
        let absolute = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        var directory = parent(of: absolute)
        var first = true
        while true {
            if let d = status(directory), let who = writers(d.st_mode), (first && scanned) || d.st_mode & S_ISVTX == 0 {
                let reason = first ? "so others could put a library there" : "so others could replace what is inside"
                return "trawl runs as root and the directory \(directory) is writable by \(who) (mode \(octal(d.st_mode))), "
                    + "\(reason); fix it with: chmod go-w \(directory)"
            }
            if directory == "/" { return nil }
            directory = parent(of: directory)
            first = false
        }
    }

    /// "group", "others" or "group and others" when the mode lets them write.
    static func writers(_ mode: mode_t) -> String? {
        switch (mode & S_IWGRP != 0, mode & S_IWOTH != 0) {
        case (true, true): return "group and others"
        case (true, false): return "its group"
        case (false, true): return "others"
        default: return nil
        }
    }

    static func status(_ path: String) -> stat? {
        var s = stat()
        return stat(path, &s) == 0 ? s : nil
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func currentDirectory() -> String {
        guard let cwd = getcwd(nil, 0) else { return "." }
        defer { free(cwd) }
        return String(cString: cwd)
    }
}
