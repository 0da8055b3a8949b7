import Foundation

/// The Markdown report, and whether the targets were met.
struct Report {
  /// Parsing the header must take less than this, in seconds.
  static let parseLimit = 1.0
  /// Range reads must reach at least this fraction of `cat`'s speed.
  static let ratioLimit = 0.8

  var options: BenchmarkOptions
  var header: HeaderBenchmark.Result?
  var read: ReadBenchmark.Result?
  /// The load average before the benchmarks ran.
  var startingLoad = Report.loadAverage

  /// The targets missed, in words; empty when all were met.
  var failures: [String] {
    var failures: [String] = []
    if let header {
      // The median, so that one hiccup of a shared machine does not fail the check; the
      // first run, which a one-shot process sees, is in the report.
      if header.decode.median >= Self.parseLimit {
        failures.append("decode(json:) median \(Self.seconds(header.decode.median)) ≥ \(Self.parseLimit) s")
      }
      if header.openSkipped == nil, header.open.median >= Self.parseLimit {
        failures.append("SafeTensorsFile(path:) median \(Self.seconds(header.open.median)) ≥ \(Self.parseLimit) s")
      }
    }
    if let read, read.ratio(0) < Self.ratioLimit {
      failures.append(
        "range reads in \(read.ranges[0].chunkSize >> 20) MiB chunks reach \(Self.fixed(read.ratio(0))) of cat's speed, "
          + "under \(Self.ratioLimit)")
    }
    return failures
  }

  var markdown: String {
    let info = ProcessInfo.processInfo
    var lines = [
      "### header-bench, \(Self.today())",
      "",
      "`\(CommandLine.arguments.joined(separator: " "))` on \(info.hostName): "
        + "\(info.activeProcessorCount) cores, \(info.physicalMemory >> 30) GiB RAM, files in `\(options.directory)`, "
        + "load average \(startingLoad) at the start.",
      "",
    ]
    if let header {
      lines += [
        "Header of \(header.tensorCount.formatted()) tensors, \(Self.fixed(Double(header.jsonBytes) / 1e6)) MB of JSON "
          + "(\(options.headerRuns) runs, seconds):",
        "",
        "| step | first | best | median | target |",
        "|---|---:|---:|---:|---|",
        Self.row("`SafeTensorsHeader.decode(json:)`", header.decode, target: "< \(Self.parseLimit) s"),
        Self.row("  of which `JSONParser.parse` (UTF-8 check + tree)", header.jsonParse),
        Self.row("  of which releasing the JSON tree", header.treeRelease),
        Self.row("  for scale: `SafeTensorsHeader(metadata:tensors:)`", header.construct),
      ]
      if let skipped = header.openSkipped {
        lines += ["", "`SafeTensorsFile(path:)` not measured: \(skipped)"]
      } else {
        lines.append(
          Self.row(
            "`SafeTensorsFile(path:)` (sparse \(Self.fixed(Double(header.sparseFileBytes) / 1e12)) TB file)",
            header.open, target: "< \(Self.parseLimit) s"))
      }
      let rate = Double(header.jsonBytes) / header.decode.best / 1e6
      lines += ["", "Best decode rate: \(Self.fixed(rate)) MB/s of JSON.", ""]
    }
    if let read {
      lines += [
        "Reading \(Self.fixed(Double(read.fileBytes) / Double(1 << 30))) GiB (\(read.tensorCount) BF16 tensors) "
          + "from the page cache, \(options.readRounds) alternating rounds after one warm-up "
          + "(written and fsynced in \(Self.fixed(read.writeSeconds)) s):",
        "",
        "| reader | best GB/s | median GB/s | best / cat best | target |",
        "|---|---:|---:|---:|---|",
        "| `cat FILE > /dev/null` | \(Self.fixed(read.catSpeed(read.cat.best))) "
          + "| \(Self.fixed(read.catSpeed(read.cat.median))) | 1.00 | |",
      ]
      for (index, range) in read.ranges.enumerated() {
        lines.append(
          "| `forEachChunk`, \(range.chunkSize >> 20) MiB chunks | \(Self.fixed(read.rangeSpeed(range.samples.best))) "
            + "| \(Self.fixed(read.rangeSpeed(range.samples.median))) | \(Self.fixed(read.ratio(index))) "
            + "| \(index == 0 ? "≥ \(Self.ratioLimit)" : "") |")
      }
      lines.append("")
    }
    let failures = failures
    lines.append(failures.isEmpty ? "All targets met." : "Targets missed: " + failures.joined(separator: "; ") + ".")
    return lines.joined(separator: "\n")
  }

  private static func row(_ name: String, _ samples: Samples, target: String = "") -> String {
    "| \(name) | \(seconds(samples.first)) | \(seconds(samples.best)) | \(seconds(samples.median)) | \(target) |"
  }

  private static func seconds(_ value: Double) -> String { String(format: "%.3f", value) }
  private static func fixed(_ value: Double) -> String { String(format: "%.2f", value) }

  /// The one-minute load average, which shows whether other work shared the machine.
  static var loadAverage: String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").first.map(String.init) ?? "unknown"
  }

  private static func today() -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.dateFormat = "yyyy-MM-dd HH:mm zzz"
    return formatter.string(from: Date())
  }
}
