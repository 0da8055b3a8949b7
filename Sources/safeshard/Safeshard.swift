import ArgumentParser
import Pipeline

@main
struct Safeshard: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Convert model checkpoints into torchao-format safetensors shards.",
    discussion: """
      Exit status: 0 on success, 1 when the input is invalid or a check fails, \
      64 for a usage error.
      """,
    version: "safeshard \(BuildInfo.version) (liblz4 \(BuildInfo.lz4Version))",
    subcommands: [Convert.self, PlanCommand.self, Finalize.self, Inspect.self, Verify.self]
  )
}
