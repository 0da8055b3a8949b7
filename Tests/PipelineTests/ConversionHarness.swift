import Foundation
import Pipeline
import Quantization
import SafeTensors
import Testing
import TorchAO

/// Runs conversions in-process and checks their output against the input.
enum ConversionHarness {
  static let repository = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  static let tinyLlama = repository.appendingPathComponent("Examples/tiny-llama").path

  static func scratch() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-convert-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  static func plan(_ input: String, recipe: String, _ configure: (inout ConversionOptions) -> Void = { _ in }) throws
    -> (Checkpoint, ConversionPlan)
  {
    let recipe = try Recipe.load(recipe)
    let checkpoint = try Checkpoint.input(at: input, dequantizing: recipe.dequantizesInput)
    var options = ConversionOptions()
    configure(&options)
    return (checkpoint, try ConversionPlan(checkpoint: checkpoint, recipe: recipe, options: options))
  }

  @discardableResult
  static func convert(
    _ input: String, to output: String, recipe: String, _ configure: (inout ConversionOptions) -> Void = { _ in },
    progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in }
  ) async throws -> Converter.Report {
    let (checkpoint, plan) = try plan(input, recipe: recipe, configure)
    let directory = OutputDirectory(path: output)
    let lock = try directory.lock(worker: plan.options.workerIndex)
    defer { withExtendedLifetime(lock) {} }
    if try directory.recordedIdentity() == nil {
      try directory.record(RunIdentity(input: input, recipe: recipe, checkpoint: checkpoint, plan: plan))
    }
    var isDirectory: ObjCBool = false
    _ = FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory)
    return try await Converter(
      checkpoint: checkpoint, plan: plan, output: directory, inputDirectory: isDirectory.boolValue ? input : nil,
      progress: progress
    ).run()
  }

  /// The stored tensors of the checkpoint at `path`: dtype, shape and bytes by name; and its
  /// metadata, the same in every file, with `tensor_names` as a sorted list.
  static func tensorsAndMetadata(_ path: String, ignoringFormat: Bool = false) throws
    -> (tensors: [String: String], metadata: [String: JSONValue])
  {
    let checkpoint = try Checkpoint(path: path)
    var tensors: [String: String] = [:]
    for (tensor, file) in checkpoint.tensors {
      tensors[tensor.name] = "\(tensor.dtype.rawValue) \(tensor.shape) \(try file.bytes(of: tensor))"
    }
    var metadata: [String: JSONValue] = [:]
    for (key, text) in checkpoint.files[0].header.metadata ?? [:] where !(ignoringFormat && key == "format") {
      // Values are JSON except transformers' `format`.
      let value = key == "format" ? .string(text) : try JSONParser.parse(text)
      metadata[key] =
        key == "tensor_names" ? .array((value.array ?? []).sorted { ($0.string ?? "") < ($1.string ?? "") }) : value
    }
    for file in checkpoint.files { #expect(file.header.metadata == checkpoint.files[0].header.metadata) }
    return (tensors, metadata)
  }

  static func expectSame(_ output: String, _ expected: String, ignoringFormat: Bool = false) throws {
    let (tensors, metadata) = try tensorsAndMetadata(output, ignoringFormat: ignoringFormat)
    let (expectedTensors, expectedMetadata) = try tensorsAndMetadata(expected, ignoringFormat: ignoringFormat)
    #expect(Set(tensors.keys) == Set(expectedTensors.keys))
    for (name, value) in expectedTensors { #expect(tensors[name] == value, "\(name)") }
    #expect(metadata == expectedMetadata)
  }

  static func converted(_ input: String, recipe: String, in scratch: URL, _ name: String = "out") async throws
    -> String
  {
    let output = scratch.appendingPathComponent(name).path
    try await ConversionHarness.convert(input, to: output, recipe: recipe)
    return output
  }

  /// Every file of a directory with its bytes.
  static func contents(of directory: String) throws -> [String: Data] {
    var files: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
      files[name] = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))
    }
    return files
  }

  /// Checks `output` against `input`: every plain tensor identical, every quantized weight's
  /// parts equal to quantizing the input tensor with `config` in memory. Returns the number of
  /// quantized weights.
  static func checkAgainstInput(_ output: String, input: String) throws -> Int {
    let source = try Checkpoint(path: input)
    let result = try Checkpoint(path: output)
    let decoded = try TorchAOCheckpoint(result)
    let configText = try Data(contentsOf: URL(fileURLWithPath: output).appendingPathComponent("config.json"))
    let configJSON = try JSONParser.parse(Array(configText))
    let recipe = try recipe(quantType: configJSON["quantization_config"]!["quant_type"]!["default"]!)
    var quantized = 0
    for (tensor, file) in source.tensors {
      let bytes = try file.bytes(of: tensor)
      if let weight = decoded.weight(named: tensor.name) {
        guard
          case .quantize(let config) = try recipe.selection(name: tensor.name, shape: tensor.shape, dtype: tensor.dtype)
        else { throw PipelineError(.invalidInput, "config.json does not quantize \(tensor.name)") }
        let format = FloatFormat(rawValue: tensor.dtype.rawValue)!
        let expected = try bytes.withUnsafeBytes { try config.scheme(source: format).quantize($0, shape: tensor.shape) }
        for (part, stored) in weight.parts where try stored.file.bytes(of: stored.tensor) != expected[part] {
          throw PipelineError(.invalidInput, "\(stored.tensor.name) differs from quantizing the input in memory")
        }
        quantized += 1
      } else {
        let stored = try result.file(holding: tensor.name)
        guard try stored.bytes(of: stored.tensor(named: tensor.name)) == bytes else {
          throw PipelineError(.invalidInput, "\(tensor.name) was not copied unchanged")
        }
      }
    }
    return quantized
  }

  /// The recipe a written `quant_type.default` amounts to: one config, or torchao's FqnToConfig
  /// (`_default` and a rule for every other key, `null` as skip).
  static func recipe(quantType: JSONValue) throws -> Recipe {
    guard quantType["_type"] == .string("FqnToConfig") else {
      return Recipe(name: "config.json", defaultConfig: try TorchAOConfig(configDict: quantType))
    }
    let map = quantType["_data"]?["fqn_to_config"]?.members ?? []
    let defaultConfig = try map.first { $0.key == "_default" }.map { try TorchAOConfig(configDict: $0.value) }
    let rules = try map.filter { $0.key != "_default" }.map { member in
      Recipe.Rule(
        try TensorPattern(member.key),
        member.value == .null ? .skip : .quantize(try TorchAOConfig(configDict: member.value)))
    }
    return Recipe(name: "config.json", defaultConfig: defaultConfig, rules: rules)
  }
}
