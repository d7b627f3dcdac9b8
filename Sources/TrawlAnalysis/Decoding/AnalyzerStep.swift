/// What an analyzer below the transport (a link layer, a shim, a tunnel) made of its header:
/// its part of the packet, `view`, has been narrowed to what it carries.
enum AnalyzerStep {
    /// Hand the rest to the analyzer registered for this protocol value (else the default).
    case dispatch(UInt64)
    /// Hand the rest to this analyzer's default analyzer.
    case forward
    /// Nothing more to analyse, and nothing wrong (an 802.11 management frame, say).
    case stop
    /// Something is wrong with the header: Zeek's weird for it.
    case weird(Weird, WeirdDetail = .none)
    /// An 802.11 A-MSDU: `view` holds several subframes, each a packet of its own.
    case subframes
    /// A tunnel analyzer gives up on this connection for good (Zeek's analyzer violation).
    case violation(String)
}

extension AnalyzerStep {
    /// The usual shim: a header of `length` bytes, more than which must be there (else
    /// `truncated`), whose protocol field (`field(bytes, offset)`) picks the next analyzer.
    @inline(__always)
    static func header(_ b: UnsafeRawBufferPointer, _ view: inout ByteView, length: Int, truncated: Weird,
                       protocolAt offset: Int, _ field: (UnsafeRawBufferPointer, Int) -> UInt64) -> AnalyzerStep {
        guard view.count > length else { return .weird(truncated) }
        let value = field(b, view.start + offset)
        view.start += length
        return .dispatch(value)
    }

    /// A 16-bit big-endian protocol field (an EtherType or PPP protocol).
    @inline(__always) static func be16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 { UInt64(b.be16(at)) }
}

/// The bytes one analyzer works on: `start..<end` of the packet's bytes. Analyzers shrink
/// it from the front (their header) and sometimes from the back (a length field that says
/// the frame is shorter than what was captured).
struct ByteView {
    var start: Int
    var end: Int
    var count: Int { end - start }
}
