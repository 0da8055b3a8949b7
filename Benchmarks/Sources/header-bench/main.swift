// header-bench: how fast a large safetensors header decodes and how fast tensor bytes read by
// range, against the targets of the issue. Run in release: `bash Benchmarks/run.sh`.
import Foundation

/// Runs the benchmarks the options ask for and returns the exit status: 0 when every target
/// is met, 1 when one is missed, 2 when the benchmark itself could not run.
func runBenchmarks() -> Int32 {
  let options: BenchmarkOptions
  do {
    options = try BenchmarkOptions(arguments: Array(CommandLine.arguments.dropFirst()))
  } catch {
    if let message = error.message { FileHandle.standardError.write(Data("header-bench: \(message)\n".utf8)) }
    print(BenchmarkOptions.usage)
    return error.message == nil ? 0 : 2
  }
  let directory = (options.directory as NSString).appendingPathComponent("header-bench-\(getpid())")
  do {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  } catch {
    FileHandle.standardError.write(Data("header-bench: cannot create \(directory): \(error)\n".utf8))
    return 2
  }
  defer { try? FileManager.default.removeItem(atPath: directory) }

  var report = Report(options: options)
  do {
    if options.runsHeader {
      report.header = try HeaderBenchmark(
        tensorCount: options.tensorCount, runs: options.headerRuns, directory: directory
      ).run()
    }
    if options.runsRead {
      report.read = try ReadBenchmark(
        bytes: Int(options.readGiB * Double(1 << 30)), rounds: options.readRounds, chunkSizes: options.chunkSizes,
        directory: directory
      ).run()
    }
  } catch {
    FileHandle.standardError.write(Data("header-bench: \(error)\n".utf8))
    return 2
  }
  print(report.markdown)
  return report.failures.isEmpty ? 0 : 1
}

exit(runBenchmarks())
