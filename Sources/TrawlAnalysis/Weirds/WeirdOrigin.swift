/// How Zeek raises a weird, which decides what its weird.log row says about where it was.
/// (Sources are static strings: handing one on costs no reference counting.)
enum WeirdOrigin {
    /// A packet analyzer's (Zeek's `Analyzer::Weird(name, packet)`): about the flow of the
    /// packet's IP header once the IP analyzer has read one, else about nothing (a "net"
    /// weird); `_in_tunnel` is added to the name inside a tunnel. `source` is the analyzer.
    case packet(source: StaticString)
    /// Found reading an IPv6 header chain or putting fragments together: about the flow of
    /// the addresses given, with no source and no tunnel suffix.
    case flow
    /// A connection analyzer's: about the connection (uid and id); `source` is the analyzer,
    /// if Zeek names one.
    case connection(source: StaticString?)
    /// One of Trawl's bounds was hit (Zeek has no such weird): about nothing in particular,
    /// so that a flood makes a row per name and sampling period, not one per connection.
    case bound
    /// Counted for the summary but not logged (an unknown protocol number is Zeek's
    /// unknown_protocols.log, which Trawl does not write).
    case countedOnly
}

extension Weird {
    /// Where Zeek raises this weird (see `WeirdOrigin`). A name raised by several analyzers
    /// is given its source where it is noted.
    var origin: WeirdOrigin {
        switch self {
        // Trawl's bounds.
        case .connectionEvicted, .excessiveFragments, .fragmentBeyondMaxDatagram, .historyTruncated, .tooManyHoles:
            return .bound
        case .unknownProtocol, .sourceReported:
            return .countedOnly
        // IPv6 header chains and fragment reassembly (Zeek's IP_Hdr and FragReassembler).
        case .badHomeAddrLen, .badIpv6DestOptLen, .badRouting2Len, .multipleHomeAddrOpts, .multipleRoutingHeaders,
             .oddRouting0Len, .routing0Hdr, .unknownRoutingType, .excessivelyLargeFragment, .excessivelySmallFragment,
             .fragmentInconsistency, .fragmentOverlap, .fragmentProtocolInconsistency, .fragmentSizeInconsistency,
             .fragmentWithDF, .fragmentInsideFragment:
            return .flow
        // The connection analyzers.
        case .badTCPChecksum, .badTCPHeaderLen, .truncatedTCPPayload, .aboveHoleDataWithoutAnyAcks,
             .excessiveDataWithoutFurtherAcks:
            return .connection(source: "TCP")
        case .activeConnectionReuse, .connectionOriginatorSYNAck, .tcpAckUnderflowOrMisorder, .tcpSeqUnderflowOrMisorder:
            return .connection(source: "TCP")
        case .synSeqJump, .tunnelMaxChangesPerConnectionExceeded:
            return .connection(source: nil)
        case .badUDPChecksum, .udpDatagramLengthMismatch:
            return .connection(source: "UDP")
        case .badICMPChecksum:
            return .connection(source: "ICMP")
        case .dnsConnCountTooLarge, .dnsTruncatedLenLtHdrLen, .dnsUnknownOpcode:
            return .connection(source: "DNS")
        case .teredoBubbleWithPayload:
            return .connection(source: "TEREDO")
        case .truncatedTeredo, .truncatedTeredoAuthentication, .truncatedTeredoOriginIndication, .truncatedIPv6InTeredo:
            // Zeek logs these only on a connection its Teredo analyzer confirmed; Trawl
            // does not track confirmation, and counts them.
            return .countedOnly
        case .tunnelDepth:
            return .connection(source: "GTPV1")
        // The packet analyzers.
        case .ipHdrLenZero, .truncatedIP, .truncatedIPLen, .invalidIPHeaderSize, .internallyTruncatedHeader,
             .ipv4MinHeaderSize, .ipv6MinHeaderSize, .unknownIpVersion, .badIPChecksum, .badMHChecksum, .mobilityPiggyback,
             .ipv6NoNext, .incompletelyCapturedFragment:
            return .packet(source: "IP")
        case .truncatedHeader:
            return .packet(source: "IP") // given by the transport where noted
        case .ayiyaEmptyPacket: return .packet(source: "AYIYA")
        case .egreProtocolType, .greRouting, .nonIpPacketInEncap, .truncatedGRE, .unknownGreFlags, .unknownGreVersion:
            return .packet(source: "GRE")
        case .invalidInnerIPVersion, .truncatedInnerIP, .innerIPPayloadLengthMismatch, .exceededTunnelMaxDepth:
            return .packet(source: "IPTUNNEL")
        case .geneveEmptyPacket, .geneveInvalidVersion: return .packet(source: "GENEVE")
        case .vxlanEmptyPacket: return .packet(source: "VXLAN")
        case .fddiAnalyzerFailed: return .packet(source: "FDDI")
        case .invalid80211AmsduInnerPacket, .truncated80211AmsduHeader, .truncated80211AmsduPacket, .truncated80211Header,
             .truncated80211LlcHeader:
            return .packet(source: "IEEE802_11")
        case .truncatedRadiotapHeader: return .packet(source: "IEEE802_11_RADIO")
        case .maxPacketAnalyzerDepthExceeded, .noSuitableAnalyzerFound: return .packet(source: "ROOT")
        case .nflogBadTlvLen, .nflogNoPcapPayload, .truncatedNflogHeader, .unknownNflogVersion: return .packet(source: "NFLOG")
        case .nullAnalyzerFailed: return .packet(source: "NULL")
        case .skipBadLength: return .packet(source: "SKIP")
        case .truncatedEthernetFrame, .truncatedLinkHeaderCfp, .undefinedEtherType: return .packet(source: "ETHERNET")
        case .truncatedLinkHeader: return .packet(source: "MPLS")
        case .truncatedLinuxSLL2Header: return .packet(source: "LINUXSLL2")
        case .truncatedLinuxSLLHeader: return .packet(source: "LINUXSLL")
        case .truncatedLlcHeader: return .packet(source: "LLC")
        case .truncatedPBBHeader: return .packet(source: "PBB")
        case .truncatedPppHdlcHeader, .truncatedPppHeader: return .packet(source: "PPP")
        case .truncatedPppoeHeader: return .packet(source: "PPPOE")
        case .truncatedPppSerialHeader: return .packet(source: "PPPSERIAL")
        case .truncatedSnapHeader, .truncatedSnapLlcHeader: return .packet(source: "SNAP")
        case .truncatedVLANHeader, .undefinedVlanProtocol: return .packet(source: "VLAN")
        case .truncatedVntagHeader: return .packet(source: "VNTAG")
        }
    }
}

extension Weird {
    /// A bit of `Connection.weirdsLogged` for the connection weirds that can come with
    /// every packet of a connection (random bytes on a DNS port, say): a repeat of one is
    /// then known without a lookup.
    var connectionBit: UInt8 {
        switch self {
        case .dnsUnknownOpcode: 1
        case .dnsTruncatedLenLtHdrLen: 2
        case .dnsConnCountTooLarge: 4
        case .udpDatagramLengthMismatch: 8
        case .truncatedTCPPayload: 16
        case .tcpSeqUnderflowOrMisorder: 32
        case .tcpAckUnderflowOrMisorder: 64
        default: 0
        }
    }

    /// The bit of `Connection.weirdsLogged` that says the reporter's table holds something
    /// of the connection (to be forgotten when it ends).
    static let rememberedBit: UInt8 = 128
}

/// The numbers a few weirds carry in their `addl` (Zeek's wording for each).
public enum WeirdDetail: Sendable, Equatable {
    case none
    case value(Int)
    case pair(Int, Int)
}

extension Weird {
    /// The weird.log `addl` for `detail`, worded as Zeek words it for this weird.
    func addl(_ detail: WeirdDetail) -> String? {
        switch detail {
        case .none:
            return nil
        case let .value(v):
            switch self {
            case .egreProtocolType: return "proto=\(v)"
            case .unknownGreVersion: return "version=\(v)"
            default: return "\(v)"
            }
        case let .pair(a, b):
            switch self {
            case .nflogBadTlvLen: return "(\(a) > \(b))"
            case .udpDatagramLengthMismatch: return "\(a) != \(b)"
            default: return "\(a) > \(b)"
            }
        }
    }
}
