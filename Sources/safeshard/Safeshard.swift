import ArgumentParser
import Foundation
import Pipeline

@main
struct Safeshard: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Convert model checkpoints into torchao-format safetensors shards.",
    discussion: """
      Exit statuses (sysexits.h), for scripts and batch schedulers:
        0    success; also a worker that wrote its share (its last line says so)
        1    verify found a problem
        64   usage: a wrong flag, recipe or OUTPUT; fix the command
        65   invalid input: the input cannot be read or converted; never retry
        74   I/O failure, such as a full disk; retry after fixing the machine
        75   temporary: the output is locked by another process, or (finalize) a
             worker has not finished; retry later
        130  stopped by SIGINT, 143 by SIGTERM; the same command continues
      `convert --progress json` reports a failure as an "error" event of that class.
      """,
    version: "safeshard \(BuildInfo.version) (liblz4 \(BuildInfo.lz4Version))",
    subcommands: [Convert.self, PlanCommand.self, Finalize.self, Inspect.self, Verify.self]
  )

  /// Runs the command, and exits with the status of the class of its failure (see
  /// ``CommandFailure``); ArgumentParser reports its own errors (usage, 64).
  static func main() async {
    do {
      var command = try await asyncParseAsRoot()
      if var command = command as? AsyncParsableCommand {
        try await command.run()
      } else {
        try command.run()
      }
    } catch {
      guard !(error is ValidationError), let failure = CommandFailure(error) else { exit(withError: error) }
      FileHandle.standardError.write(Data("Error: \(failure.message)\n".utf8))
      Foundation.exit(failure.exitStatus)
    }
  }
}
