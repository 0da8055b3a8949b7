import Foundation

/// The command-line options of `header-bench`.
///
/// Parsed by hand: the benchmarks package has no argument-parser dependency, and the options
/// are few.
struct BenchmarkOptions {
  /// The directory the temporary files go in; it should be on the disk under test.
  var directory = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
  /// How many tensors the large header has.
  var tensorCount = 100_000
  /// How many times each header measurement runs.
  var headerRuns = 5
  /// The size of the file the read benchmark writes, in GiB (rounded up to whole layers).
  var readGiB = 2.0
  /// How many alternating rounds of `cat` and range reads run.
  var readRounds = 5
  /// The chunk sizes the range reads use, in bytes; the first one is the one checked.
  var chunkSizes = [8 << 20, 1 << 20]
  /// Which parts to run.
  var runsHeader = true
  var runsRead = true

  static let usage = """
    usage: header-bench [--dir PATH] [--tensors N] [--runs N] [--read-gib X] [--rounds N]
                        [--chunk-mib A,B,...] [--only header|read]

    Times decoding a header of N tensors (default 100,000) and reading a file of X GiB
    (default 2) by range against `cat FILE > /dev/null`, prints a Markdown report, and exits
    with status 1 when a target is missed. Temporary files go under --dir (default $TMPDIR or
    /tmp) and are removed at the end.

    example: swift run -c release header-bench --dir /work/tmp --rounds 7
    """

  /// Parses `arguments` (without the program name).
  ///
  /// - Throws: ``OptionError`` naming the bad option.
  init(arguments: [String]) throws(OptionError) {
    var rest = arguments[...]
    while let option = rest.popFirst() {
      if option == "--help" || option == "-h" { throw OptionError(message: nil) }
      guard let value = rest.popFirst() else { throw OptionError(message: "\(option) needs a value") }
      switch option {
      case "--dir": directory = value
      case "--tensors": tensorCount = try Self.positive(value, option)
      case "--runs": headerRuns = try Self.positive(value, option)
      case "--rounds": readRounds = try Self.positive(value, option)
      case "--read-gib":
        guard let gib = Double(value), gib > 0 else { throw OptionError(message: "\(option): not a positive number") }
        readGiB = gib
      case "--chunk-mib":
        chunkSizes = []
        for size in value.split(separator: ",") { chunkSizes.append(try Self.positive(String(size), option) << 20) }
        if chunkSizes.isEmpty { throw OptionError(message: "\(option): give at least one size") }
      case "--only":
        guard value == "header" || value == "read" else { throw OptionError(message: "--only takes header or read") }
        runsHeader = value == "header"
        runsRead = value == "read"
      default: throw OptionError(message: "unknown option \(option)")
      }
    }
  }

  private static func positive(_ text: String, _ option: String) throws(OptionError) -> Int {
    guard let value = Int(text), value > 0 else { throw OptionError(message: "\(option): not a positive integer") }
    return value
  }
}

/// A bad command line; `message` is `nil` when help was asked for.
struct OptionError: Error {
  var message: String?
}
