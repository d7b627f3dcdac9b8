import Glibc
import TrawlCLI

exit(Trawl.main(Array(CommandLine.arguments.dropFirst())))
