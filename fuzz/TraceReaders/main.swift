// Fuzzes Trawl::Pcap's own trace readers with the input as a whole file: the classic pcap
// reader (through a memory file, as it reads a path) and the pcapng reader.
#if canImport(Glibc)
import Glibc
#endif
import CFuzzDriver
import PcapReaders
import TrawlPluginSDK
import CTrawlABI

nonisolated(unsafe) let slots = UnsafeMutablePointer<trawl_packet>.allocate(capacity: 64)

func readClassic(_ input: UnsafeRawBufferPointer) {
    let fd = trawl_fuzz_memory_file()
    guard fd >= 0 else { fatalError("memfd_create failed") }
    defer { close(fd) }
    var written = 0
    while written < input.count {
        let n = write(fd, input.baseAddress! + written, input.count - written)
        guard n > 0 else { fatalError("cannot write the memory file") }
        written += n
    }
    guard let reader = try? PcapFileReader.open("/proc/self/fd/\(fd)") else { return }
    var checksum: UInt8 = 0
    while true {
        var batch = BatchOutput(slots: slots, capacity: 64)
        do {
            guard try reader.next(into: &batch, keep: { captured, _, data in
                if captured > 0 { checksum &+= data[Int(captured) - 1] } // touch the last byte handed out
                return true
            }) else { return }
        } catch {
            return
        }
    }
}

func readPcapng(_ input: UnsafeRawBufferPointer) {
    guard let file = fmemopen(UnsafeMutableRawPointer(mutating: input.baseAddress), input.count, "r") else { return }
    guard let reader = try? PcapngReader(file: file) else { return } // closes the file when it goes
    _ = PcapngReader.interfacesDifferInSnaplen(file)
    var checksum: UInt8 = 0
    while let record = try? reader.next() {
        reader.withBlock { block in
            precondition(record.dataOffset + record.capturedLength <= block.count, "a record outside its block")
            if record.capturedLength > 0 { checksum &+= block[record.dataOffset + record.capturedLength - 1] }
        }
    }
}

exit(trawl_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
    guard let data, size > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    readClassic(input)
    readPcapng(input)
    return 0
})
