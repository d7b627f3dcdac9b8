/// What Zeek's base/frameworks/notice/weird.zeek does with a weird the core reported: an
/// action per name (log it every time, once, once per connection or originator, make it a
/// notice, or ignore it). (Its holding back of repeats for ten minutes is kept with the
/// sampling counts, in `WeirdPlaces`.) Every set is bounded; a weird that cannot be
/// remembered for want of room is not logged, and counted.
struct WeirdPolicy {
    enum Action: String, CaseIterable, Sendable {
        case ignore = "ACTION_IGNORE", log = "ACTION_LOG", logOnce = "ACTION_LOG_ONCE"
        case logPerConnection = "ACTION_LOG_PER_CONN", logPerOriginator = "ACTION_LOG_PER_ORIG"
        case notice = "ACTION_NOTICE", noticeOnce = "ACTION_NOTICE_ONCE"
        case noticePerConnection = "ACTION_NOTICE_PER_CONN", noticePerOriginator = "ACTION_NOTICE_PER_ORIG"

        var makesNotice: Bool { self == .notice || self == .noticeOnce || self == .noticePerConnection || self == .noticePerOriginator }
        var limits: Bool { self != .ignore && self != .log && self != .notice }
    }

    /// Zeek's Weird::actions where they differ from its default, ACTION_LOG.
    static let zeekActions: [String: Action] = {
        var actions: [String: Action] = [:]
        for name in ["FIN_after_reset", "spontaneous_FIN", "spontaneous_RST", "unsolicited_SYN_response"] {
            actions[name] = .ignore
        }
        for name in ["FIN_storm", "SYN_after_partial", "successful_RPC_reply_to_invalid_request"] {
            actions[name] = .noticePerOriginator
        }
        for name in ["DNS_label_forward_compress_offset", "DNS_label_len_gt_name_len", "DNS_label_len_gt_pkt",
                     "DNS_label_too_long", "SSH_max_packet_length_exceeded", "SSH_max_string_length_exceeded",
                     "SYN_with_data", "UDP_datagram_length_mismatch", "bad_ICMP_checksum", "bad_IP_checksum", "bad_RPC",
                     "bad_TCP_checksum", "bad_UDP_checksum", "connection_originator_SYN_ack", "excess_RPC",
                     "excessively_small_fragment", "fragment_inconsistency", "fragment_overlap",
                     "fragment_size_inconsistency", "originator_RPC_reply", "partial_RPC", "responder_RPC_call"] {
            actions[name] = .logPerOriginator
        }
        for name in ["FTP_arg_too_long", "FTP_max_command_length_exceeded", "FTP_password_too_long", "FTP_reply_msg_too_long",
                     "FTP_too_many_pending_commands", "FTP_user_too_long", "simultaneous_open",
                     "smb_tree_connect_andx_response_without_tree", "smtp_excessive_invalid_mail_transactions",
                     "smtp_mail_transaction_invalid"] {
            actions[name] = .logPerConnection
        }
        return actions
    }()

    /// Zeek's Weird::weird_do_not_ignore_repeats: logged every time the core reports them.
    static let repeatedNames: [Weird] = [.badIPChecksum, .badTCPChecksum, .badUDPChecksum, .badICMPChecksum]
    private static let repeated: [Bool] = Weird.allCases.map { weird in repeatedNames.contains { $0.ordinal == weird.ordinal } }

    /// What a weird is about, as the script keys its sets: a connection (Zeek: its id; here
    /// its uid, the same but for a 5-tuple reused within the period), a flow's addresses,
    /// an originator, or nothing.
    enum Identifier: Hashable {
        case none
        case connection(UInt64)
        case flow(IPAddress, IPAddress)
        case host(IPAddress)
    }

    /// The action of each weird, by its ordinal: outside a tunnel, and inside one (its
    /// "_in_tunnel" name, which has an action of its own only if the table names it).
    private let plainActions: [Action]
    private let tunnelActions: [Action]
    /// Every name's action, for names the analysis has no case of (a packet source's own).
    private let actionsByName: [String: Action]
    private var logged: ExpiringSet<Key>
    private var noticed: ExpiringSet<Key>

    struct Key: Hashable {
        var name: WeirdName
        var identifier: Identifier
    }

    init(actions: [String: Action] = WeirdPolicy.zeekActions, bound: Int = 65_536) {
        actionsByName = actions
        plainActions = Weird.allCases.map { actions[$0.rawValue] ?? .log }
        tunnelActions = Weird.allCases.map { actions[$0.rawValue + "_in_tunnel"] ?? .log }
        logged = ExpiringSet(lifetime: 86_400_000_000_000, bound: bound)     // Weird::did_log: 1 day
        noticed = ExpiringSet(lifetime: 86_400_000_000_000, bound: bound)    // Weird::did_notice: 1 day
    }

    /// Weirds not logged because a set was full.
    var overflow: UInt64 { logged.overflow + noticed.overflow }

    /// Zeek's Weird::weird_ignore period: a weird let through holds its repeats back this
    /// long (none for the names logged every time).
    static let repeatHold: UInt64 = 600_000_000_000

    static func hold(for name: WeirdName) -> UInt64 {
        !name.tunnelled && repeated[name.weird.ordinal] ? 0 : repeatHold
    }

    /// Decides the fate of weird `name` about `identifier` (whose originator is
    /// `originator`, if it has one) at `now`, not a repeat held back: nil when it is not to
    /// be logged, else whether it is a notice too.
    mutating func admit(_ name: WeirdName, about identifier: Identifier, originator: IPAddress?, at now: UInt64) -> Bool? {
        let action = (name.tunnelled ? tunnelActions : plainActions)[name.weird.ordinal]
        if action == .ignore { return nil }
        if action.limits {
            var limited = identifier
            if action == .logOnce || action == .noticeOnce {
                limited = .none
            } else if action == .logPerOriginator || action == .noticePerOriginator, let originator {
                limited = .host(originator)
            }
            let limitKey = Key(name: name, identifier: limited)
            if action.makesNotice {
                guard noticed.insert(limitKey, at: now) else { return nil }
            } else {
                guard logged.insert(limitKey, at: now) else { return nil }
            }
        }
        return action.makesNotice
    }

    /// `admit` for a weird about nothing that a packet source reported under a name the
    /// analysis has no case of (`index` tells the names apart): Zeek's action for the name,
    /// where limits come down to once per name, as they do in Zeek without a connection.
    mutating func admit(sourceWeird name: String, index: Int, at now: UInt64) -> Bool? {
        let action = actionsByName[name] ?? .log
        if action == .ignore { return nil }
        if action.limits {
            let key = Key(name: WeirdName(.sourceReported), identifier: .connection(1 << 63 | UInt64(index)))
            guard action.makesNotice ? noticed.insert(key, at: now) : logged.insert(key, at: now) else { return nil }
        }
        return action.makesNotice
    }
}

/// A set whose members leave `lifetime` after they came (Zeek's &create_expire, in network
/// time), of at most `bound` members.
struct ExpiringSet<Member: Hashable> {
    private var members: [Member: UInt64] = [:]
    let lifetime: UInt64
    let bound: Int
    private(set) var overflow: UInt64 = 0
    private var lastSweep: UInt64 = 0

    init(lifetime: UInt64, bound: Int) {
        self.lifetime = lifetime
        self.bound = bound
    }

    func contains(_ member: Member, at now: UInt64) -> Bool {
        guard let since = members[member] else { return false }
        return now < since &+ lifetime
    }

    /// Adds `member`; false when it was there already, or when there is no room for it.
    mutating func insert(_ member: Member, at now: UInt64) -> Bool {
        if contains(member, at: now) { return false }
        if members[member] == nil && members.count >= bound {
            if now >= lastSweep &+ lifetime / 10 {
                lastSweep = now
                members = members.filter { now < $0.value &+ lifetime }
            }
            guard members.count < bound else {
                overflow += 1
                return false
            }
        }
        members[member] = now
        return true
    }
}
