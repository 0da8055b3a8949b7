import ArgumentParser
import Foundation
import Pipeline
import SafeTensors
import TorchAO

struct Verify: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check a safetensors file or a model directory against every rule of the format.",
    discussion: """
      Checks each file's header (length, UTF-8 JSON, dtypes, shapes, offsets, file length) and, \
      for a sharded model, the index against the shards. For a torchao checkpoint it also checks \
      the metadata (allowlisted types only, the same in every shard) and that every quantized \
      weight's parts are there with the dtypes and shapes its block_size gives (and warns when a \
      torchao model directory has no config.json with a quantization_config, and when a MoE \
      model's quantized experts are stored per expert or its metadata uses the file's module names: \
      transformers would load it with random experts). A directory with \
      SHA256SUMS has every file it lists checked against it (sub-folders \
      included), and every other file, or symbolic link leading outside the directory, reported. \
      Prints one line per problem and exits 1 if there is any, 0 if there is none.

      Examples:
        safeshard verify model.safetensors
        safeshard verify path/to/model-dir
      """
  )

  @Argument(help: "A .safetensors file, or a directory with model.safetensors or shards and an index.")
  var path: String

  func run() throws {
    // Each is loaded and decoded once when it is valid; the problem lists are only gathered
    // (loading again) when it is not.
    var problems: [any Error] = []
    var checkpoint: Checkpoint?
    var torchAO: TorchAOCheckpoint?
    do {
      checkpoint = try Checkpoint(path: path)
    } catch {
      problems = Checkpoint.problems(at: path)
    }
    if let checkpoint, TorchAOCheckpoint.hasTorchAOMetadata(checkpoint) {
      let storedName = TorchAOCheckpoint.storedNames(ofModelAt: path)
      do {
        torchAO = try TorchAOCheckpoint(checkpoint, storedName: storedName)
      } catch {
        problems = TorchAOCheckpoint.problems(in: checkpoint, storedName: storedName)
      }
    }
    if FileManager.default.fileExists(atPath: path + "/" + ChecksumList.fileName) {
      do {
        let sums = try ChecksumList(directory: path)
        problems += (sums.mismatches(in: path) + sums.unlisted(in: path)).map(VerifyProblem.init)
      } catch {
        problems.append(error)
      }
    }
    guard problems.isEmpty else {
      for problem in problems { print(problem) }
      print("\(path): \(problems.count) problem\(problems.count == 1 ? "" : "s") found")
      throw ExitCode(1)
    }
    guard let checkpoint else { throw ExitCode(1) }
    let tensors = checkpoint.files.reduce(0) { $0 + $1.header.tensors.count }
    let bytes = checkpoint.files.reduce(0) { $0 + $1.header.dataLength }
    var line =
      "\(path): OK, \(checkpoint.files.count) file\(checkpoint.files.count == 1 ? "" : "s"), \(tensors) tensors, \(bytes) data bytes"
    if let torchAO { line += ", \(torchAO.weights.count) torchao weights" }
    print(line)
    for warning in torchAO?.moeWarnings(ofModelAt: path) ?? [] {
      FileHandle.standardError.write(Data("warning: \(path): \(warning)\n".utf8))
    }
    if checkpoint.path != checkpoint.files.first?.path, TorchAOCheckpoint.hasTorchAOMetadata(checkpoint),
      FileManager.default.contents(atPath: path + "/config.json").flatMap({ try? JSONParser.parse(Array($0)) })?[
        "quantization_config"] == nil
    {
      FileHandle.standardError.write(
        Data(
          ("warning: \(path) has no config.json with a quantization_config; transformers needs one to load this "
            + "torchao checkpoint\n").utf8))
    }
  }
}

/// A problem reported as a line of text.
struct VerifyProblem: Error, CustomStringConvertible {
  var description: String
}
