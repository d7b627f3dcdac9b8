/// One weird.log row (Zeek's Weird::Info): when, what, and what it was about: a
/// connection (uid and id), a flow (its addresses, ports 0), or nothing (a "net" weird).
public struct WeirdRecord: Sendable, Equatable {
    public var time: UInt64
    public var uid: String?
    public var id: WeirdID?
    public var name: String
    public var addl: String?
    /// Whether the weird was also made a notice.
    public var notice = false
    public var peer: String
    public var source: String?

    /// Who was talking, as weird.log's `id` fields put it.
    public struct WeirdID: Sendable, Equatable {
        public var origAddress: IPAddress, origPort: UInt16
        public var respAddress: IPAddress, respPort: UInt16
        /// The transport of the ports (0 for a flow: Zeek's unknown transport).
        public var proto: UInt8
    }

    /// The row in LogSchema.weird's field order.
    public var logValues: [LogValue] {
        [
            .time(time), uid.map { .string($0) } ?? .unset,
            id.map { .address($0.origAddress) } ?? .unset, id.map { .port($0.origPort) } ?? .unset,
            id.map { .address($0.respAddress) } ?? .unset, id.map { .port($0.respPort) } ?? .unset,
            .string(name), addl.map { .string($0) } ?? .unset, .bool(notice), .string(peer),
            source.map { .string($0) } ?? .unset,
        ]
    }

    /// The notice.log row of a weird whose action is a notice (Zeek's Weird::Activity).
    public var noticeValues: [LogValue] {
        var values = LogSchema.noticeRow(time: time, note: "Weird::Activity", message: name, peer: peer)
        values[1] = uid.map { .string($0) } ?? .unset
        if let id {
            (values[2], values[3], values[4], values[5]) = (.address(id.origAddress), .port(id.origPort),
                                                            .address(id.respAddress), .port(id.respPort))
            values[9] = .enum(id.proto == 6 ? "tcp" : id.proto == 17 ? "udp" : id.proto == 1 || id.proto == 58 ? "icmp" : "unknown_transport")
            (values[13], values[14], values[15]) = (.address(id.origAddress), .address(id.respAddress), .port(id.respPort))
        }
        values[12] = addl.map { .string($0) } ?? .unset
        return values
    }
}

extension LogSchema {
    /// Zeek's base/frameworks/notice/weird: weird.log.
    public static let weird = LogSchema(path: "weird", fields: [
        ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
        ("id.resp_p", "port"), ("name", "string"), ("addl", "string"), ("notice", "bool"), ("peer", "string"),
        ("source", "string"),
    ])

    /// Zeek's base/frameworks/notice: notice.log.
    public static let notice = LogSchema(path: "notice", fields: [
        ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
        ("id.resp_p", "port"), ("fuid", "string"), ("file_mime_type", "string"), ("file_desc", "string"),
        ("proto", "enum"), ("note", "enum"), ("msg", "string"), ("sub", "string"), ("src", "addr"), ("dst", "addr"),
        ("p", "port"), ("n", "count"), ("peer_descr", "string"), ("actions", "set[string]"), ("email_dest", "set[string]"),
        ("suppress_for", "interval"), ("remote_location.country_code", "string"), ("remote_location.region", "string"),
        ("remote_location.city", "string"), ("remote_location.latitude", "double"), ("remote_location.longitude", "double"),
    ])

    /// A notice.log row with time, type, message and peer; the rest unset but Zeek's
    /// defaults (the log action, an hour's suppression).
    public static func noticeRow(time: UInt64, note: String, message: String, peer: String) -> [LogValue] {
        var values = [LogValue](repeating: .unset, count: notice.fields.count)
        values[0] = .time(time)
        values[10] = .enum(note)
        values[11] = .string(message)
        values[17] = .string(peer)
        values[18] = .set(["Notice::ACTION_LOG"])
        values[20] = .interval(3_600_000_000_000)
        return values
    }
}
