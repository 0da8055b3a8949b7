import Foundation
import SafeTensors
import Testing

@testable import Pipeline

/// A damaged `state.json` never crashes the tool: it is refused, and `--restart` is the way out.
@Suite struct RunIdentityTests {
  static func identity() throws -> RunIdentity {
    let (checkpoint, plan) = try ConversionHarness.plan(ConversionHarness.tinyLlama, recipe: "int8-weight-only")
    return RunIdentity(
      input: ConversionHarness.tinyLlama, recipe: "int8-weight-only", checkpoint: checkpoint, plan: plan)
  }

  static func text(_ identity: RunIdentity) -> String {
    JSONWriter.string(identity.json, style: .pythonIndented)
  }

  @Test func anIdentityReadsBackAsItWasWritten() throws {
    let identity = try Self.identity()
    #expect(RunIdentity(json: try JSONParser.parse(Self.text(identity))) == identity)
  }

  @Test(arguments: [
    (#""size": \d+"#, #""size": 18446744073709551615"#),
    (#""size": \d+"#, #""size": 99999999999999999999999999"#),
    (#""size": \d+"#, #""size": -1"#),
    (#""size": \d+"#, #""size": 1.5"#),
    (#""size": \d+"#, #""size": "12""#),
    (#""max_shard_size": \d+"#, #""max_shard_size": 9223372036854775808"#),
    (#""max_shard_size": \d+"#, #""max_shard_size": 0"#),
    (#""worker_count": \d+"#, #""worker_count": 0"#),
    (#""worker_count": \d+"#, #""worker_count": true"#),
    (#""worker_count": \d+"#, #""worker_count": null"#),
    (#""layout": "\w+""#, #""layout": "sideways""#),
    (#""input_files": \["#, #""input_files": {"x": ["#),
    (#""tool": "safeshard""#, #""tool": "other""#),
    (#""recipe": "[^"]*""#, #""recipe": 7"#),
    (#""plan_sha256": "[^"]*""#, #""plan_sha256": []"#),
  ])
  func aDamagedStateIsNotAnIdentity(pattern: String, replacement: String) throws {
    let text = Self.text(try Self.identity())
    let damaged = text.replacing(try Regex(pattern), with: replacement)
    #expect(damaged != text)
    let json = try? JSONParser.parse(damaged)
    #expect(json.flatMap(RunIdentity.init(json:)) == nil)
  }

  @Test(arguments: [
    "", "{", "null", "[]", "\u{0}\u{1}\u{2}", "{\"tool\": \"safeshard\"}", String(repeating: "[", count: 100_000),
  ])
  func aDamagedStateFileIsRefusedNamingIt(content: String) throws {
    try withTemporaryDirectory { path in
      let output = OutputDirectory(path: path)
      try FileManager.default.createDirectory(atPath: output.stateFolder, withIntermediateDirectories: true)
      #expect(try output.recordedIdentity() == nil)
      try content.write(toFile: output.stateFile, atomically: true, encoding: .utf8)
      let error = #expect(throws: PipelineError.self) { try output.recordedIdentity() }
      #expect(error?.code == .outputExists)
      #expect(error?.message.contains("state.json is damaged") == true)
      #expect(error?.message.contains("--restart") == true)
    }
  }

  @Test func differencesNameEachChange() throws {
    let recorded = try Self.identity()
    var now = recorded
    #expect(now.differences(from: recorded).isEmpty)
    now.recipe = "float8-weight-only"
    now.workerCount = 2
    now.planDigest = "other"
    now.inputFiles[0].size += 1
    now.inputFiles[0].modified = "0"
    now.inputFiles[0].headerSHA256 = "other"
    now.inputFiles.append(RunIdentity.InputFile(name: "extra.safetensors", size: 1, modified: "", headerSHA256: ""))
    let name = recorded.inputFiles[0].name
    let size = recorded.inputFiles[0].size
    #expect(
      now.differences(from: recorded) == [
        "input file extra.safetensors is new",
        "input file \(name) changed size (\(size) → \(size + 1) bytes)",
        "input file \(name) has a different header",
        "input file \(name) was modified",
        "the recipe is float8-weight-only, it was int8-weight-only",
        "--worker-count is 2, it was 1",
        "the recipe or options give other shards (--max-shard-size, --layout, or the recipe's settings)",
      ])
  }
}
