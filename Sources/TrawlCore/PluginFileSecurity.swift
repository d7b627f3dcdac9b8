#if canImport(Glibc)
import Glibc
#endif

/// Running as root, a plugin is code that runs as root: refuse a library that someone else
/// could have replaced, as sudo refuses a plugin of its own that group or others can write.
/// Refused: a file writable by group or others; the directory it is in, writable by group or
/// others (when the file was named on its own rather than found by listing the directory,
/// the sticky bit is enough there: others may add files, but not replace this one); and a
/// directory above them writable by others without the sticky bit (anyone could rename the
/// directory away and put theirs in its place). A directory above that only its group can
/// write is the administrator's choice (Debian's /usr/local for group staff, whose members
/// can put programs in root's PATH anyway) and is let be.
public enum PluginFileSecurity {
    /// Nil when `path` may be loaded; otherwise why not and how to fix it. `scanned`: the
    /// file was found by listing its directory, so whoever can add a file there chooses code.
    public static func problem(with named: String, scanned: Bool = true) -> String? {
        // What is loaded is where symbolic links lead.
        let path = PluginLoader.realPath(named) ?? named
        guard let file = status(path) else { return nil } // dlopen says why it cannot open it
        if let who = writers(file.st_mode) {
            return "trawl runs as root and \(path) is writable by \(who) (mode \(octal(file.st_mode))), "
                + "so someone other than root could change code that runs as root; fix it with: chmod go-w \(path)"
        }
        let absolute = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        var directory = parent(of: absolute)
        var first = true
        while true {
            if let d = status(directory), let who = writers(d.st_mode) {
                let sticky = d.st_mode & S_ISVTX != 0
                let refused = first ? scanned || !sticky : d.st_mode & S_IWOTH != 0 && !sticky
                if refused {
                    let reason = first ? "so others could put a library there" : "so others could replace what is inside"
                    return "trawl runs as root and the directory \(directory) is writable by \(who) (mode \(octal(d.st_mode))), "
                        + "\(reason); fix it with: chmod go-w \(directory)"
                }
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
