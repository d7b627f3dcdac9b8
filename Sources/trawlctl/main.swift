#if canImport(Glibc)
import Glibc
#endif
import TrawlControl

exit(Trawlctl.main(CommandLine.arguments))
