/// An IPv6 header and the extension headers after it, walked as Zeek walks them
/// (IPv6_Hdr_Chain): hop-by-hop, routing, destination options, fragment, AH, ESP and
/// mobility headers, stopping after a fragment, ESP or mobility header, at the first header
/// that is no extension, or at one that is cut short. A routing header (type 0 or 2, with
/// segments left) names the final destination; a home address option (Mobile IPv6) names
/// the true source.
struct IPv6Chain {
    static let hopByHop: UInt8 = 0, routing: UInt8 = 43, fragment: UInt8 = 44, esp: UInt8 = 50
    static let authentication: UInt8 = 51, noNextHeader: UInt8 = 59, destinationOptions: UInt8 = 60, mobility: UInt8 = 135

    /// Where the fixed header starts, and the bytes of it and the extension headers walked.
    var start = 0
    var length = 0
    /// The type of the last header walked (41 for the fixed header alone), and where it starts.
    var lastHeader: UInt8 = 41
    var lastHeaderAt = 0
    /// What the last header walked names as next: the transport, normally.
    var nextHeader: UInt8 = 0
    /// Where the fragment header starts, when the chain ends in one.
    var fragmentHeaderAt: Int?
    var finalDestination: IPAddress?
    var homeAddress: IPAddress?

    /// An empty chain, for IPv4 packets.
    init() {}

    static func isExtension(_ type: UInt8) -> Bool {
        switch type {
        case hopByHop, routing, destinationOptions, fragment, authentication, esp, mobility: return true
        default: return false
        }
    }

    /// The length of an extension header of `type` whose second byte is `lengthByte`.
    static func extensionLength(type: UInt8, lengthByte: UInt8) -> Int {
        switch type {
        case fragment, esp: return 8
        case authentication: return 8 + 4 * Int(lengthByte)
        default: return 8 + 8 * Int(lengthByte)
        }
    }

    /// Walks the headers of the IPv6 packet at `start`, of which `captured` bytes are there
    /// (at least 40). Weirds about routing headers and options go to `weirds`.
    init(_ b: UnsafeRawBufferPointer, start: Int, captured: Int, weirds: inout Weirds) {
        self.start = start
        var remaining = captured
        var at = start
        var current: UInt8
        var next: UInt8 = 41
        repeat {
            guard remaining >= 2 else { return }
            current = next
            let headerLength: Int
            if current == 41 {
                next = b[at + 6]
                headerLength = 40
            } else {
                next = current == Self.esp ? Self.noNextHeader : b[at]
                headerLength = Self.extensionLength(type: current, lengthByte: b[at + 1])
            }
            guard headerLength <= remaining else { return } // cut short: not part of the chain
            lastHeader = current
            lastHeaderAt = at
            nextHeader = next
            switch current {
            case Self.routing: processRouting(b, at: at, length: headerLength, weirds: &weirds)
            case Self.destinationOptions: processOptions(b, at: at, length: headerLength, weirds: &weirds)
            case Self.fragment: fragmentHeaderAt = at
            default: break
            }
            at += headerLength
            length += headerLength
            remaining -= headerLength
        } while current != Self.fragment && current != Self.esp && current != Self.mobility && Self.isExtension(next)
    }

    private mutating func processRouting(_ b: UnsafeRawBufferPointer, at: Int, length: Int, weirds: inout Weirds) {
        guard finalDestination == nil else {
            flowWeird(.multipleRoutingHeaders, b, &weirds) // RFC 8200: at most once
            return
        }
        let type = b[at + 2], segmentsLeft = b[at + 3], lengthField = b[at + 1]
        // The address wanted is the header's last 16 bytes (for the types known).
        var last: IPAddress { IPAddress(v6: b, at: at + length - 16) }
        switch type {
        case 0: // deprecated by RFC 5095
            if segmentsLeft > 0 && lengthField >= 2 {
                if lengthField % 2 == 0 { finalDestination = last } else { flowWeird(.oddRouting0Len, b, &weirds) }
            }
            flowWeird(.routing0Hdr, b, &weirds)
        case 2: // Mobile IPv6
            if segmentsLeft > 0 {
                if lengthField == 2 { finalDestination = last } else { flowWeird(.badRouting2Len, b, &weirds) }
            }
        default:
            flowWeird(.unknownRoutingType, b, detail: .value(Int(type)), &weirds)
        }
    }

    /// Zeek raises these about the chain's addresses as they stand when found (the home
    /// address and final destination read so far).
    private func flowWeird(_ weird: Weird, _ b: UnsafeRawBufferPointer, detail: WeirdDetail = .none, _ weirds: inout Weirds) {
        weirds.note(weird, from: homeAddress ?? IPAddress(v6: b, at: start + 8),
                    to: finalDestination ?? IPAddress(v6: b, at: start + 24), detail: detail)
    }

    private mutating func processOptions(_ b: UnsafeRawBufferPointer, at: Int, length: Int, weirds: inout Weirds) {
        var option = at + 2
        let end = at + length
        while option < end {
            let type = b[option]
            if type == 0 { // Pad1
                option += 1
                continue
            }
            guard end - option >= 2, end - option >= 2 + Int(b[option + 1]) else {
                flowWeird(.badIpv6DestOptLen, b, &weirds)
                return
            }
            let optionLength = Int(b[option + 1])
            if type == 201 { // home address option
                if optionLength == 16 {
                    if homeAddress != nil { flowWeird(.multipleHomeAddrOpts, b, &weirds) } else { homeAddress = IPAddress(v6: b, at: option + 2) }
                } else {
                    flowWeird(.badHomeAddrLen, b, &weirds)
                }
            }
            option += 2 + optionLength
        }
    }
}
