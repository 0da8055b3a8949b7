import Foundation
import Quantization
import SafeTensors
import TorchAO

/// The whole output of a conversion, decided from the input's headers and the recipe before any
/// data moves: what becomes of every input tensor, every output shard's name and header (so
/// every stored tensor's offset), the metadata every shard carries, and the totals of the index.
///
/// The plan is deterministic: the same input headers, recipe and options give the same plan,
/// which is what lets a conversion resume and lets workers on several machines share one.
public struct ConversionPlan: Sendable {
  /// One tensor of the input, in its file.
  public struct Input: Sendable {
    /// The index of the input file that holds it, in the checkpoint's files.
    public var file: Int
    /// The tensor.
    public var tensor: TensorInfo
  }

  /// What happens to one input tensor, or to the input tensors that fuse into one quantized
  /// parameter (a MoE block's routed experts). A class, so that iterating the plan's entries
  /// (100 000 for a large model) copies a reference, not every field.
  public final class Entry: Sendable {
    /// The tensor the entry reads: an input tensor, or for fused experts the parameter in memory
    /// layout, named as the file names it (offsets `0..<byteCount` over ``inputs``).
    public let source: TensorInfo
    /// The input tensors whose bytes, one after another, are ``source``'s.
    public let inputs: [Input]
    /// The parameter's in-memory name, which the torchao metadata lists (several copied
    /// per-expert tensors share their fused parameter's).
    public let parameter: String
    /// The config that quantizes it, or `nil` when it is copied unchanged.
    public let config: TorchAOConfig?
    /// Why it is copied, when it is.
    public let reason: String?
    /// What is stored for it.
    public let flattened: FlattenedEntry
    /// The parts the scheme writes, for a quantized tensor.
    public let layout: QuantizedLayout?

    init(
      source: TensorInfo, inputs: [Input], parameter: String, config: TorchAOConfig?, reason: String?,
      flattened: FlattenedEntry, layout: QuantizedLayout?
    ) {
      self.source = source
      self.inputs = inputs
      self.parameter = parameter
      self.config = config
      self.reason = reason
      self.flattened = flattened
      self.layout = layout
    }

    /// The input format of a quantized tensor.
    public var format: FloatFormat? { FloatFormat(rawValue: source.dtype.rawValue) }
  }

  /// One output shard.
  public struct Shard: Sendable {
    /// The file name (`model-00001-of-00003.safetensors`, or `model.safetensors` alone).
    public var fileName: String
    /// The header, with every stored tensor's offsets.
    public var header: SafeTensorsHeader
    /// The encoded header bytes that start the file.
    public var headerBytes: [UInt8]
    /// The size of the finished file.
    public var fileSize: Int { headerBytes.count + header.dataLength }
  }

  /// Where a stored tensor is: its shard and its entry in that shard's header.
  public struct Placement: Sendable {
    public var shard: Int
    public var tensor: TensorInfo
  }

  /// Every input tensor, in input order.
  public var entries: [Entry]
  /// The output shards, in file-name order.
  public var shards: [Shard]
  /// The `__metadata__` of every shard.
  public var metadata: [String: String]
  /// The sum of every stored tensor's bytes (`metadata.total_size` of the index).
  public var totalSize: Int
  /// The number of parameters of the model, quantized weights counted at their original shape
  /// (`metadata.total_parameters`).
  public var totalParameters: Int
  /// The options the plan was made with.
  public var options: ConversionOptions
  /// Where every stored tensor goes, entry by entry in the order of each ``Entry/flattened``'s
  /// `stored`: a table by position, so that 300 000 stored tensors are placed without hashing
  /// their names.
  private var placements: [Placement]
  /// Where each entry's placements start in ``placements``, and (last) their end.
  private var placementStarts: [Int]

  /// Where the stored tensors of `entries[entry]` go, in the order of its `flattened.stored`.
  public func placements(ofEntry entry: Int) -> ArraySlice<Placement> {
    placements[placementStarts[entry]..<placementStarts[entry + 1]]
  }

  /// Plans the conversion of `checkpoint` with `recipe`.
  ///
  /// - Throws: ``PipelineError`` (`invalidInput`) naming the tensor when the recipe or torchao
  ///   refuses one, or an output tensor name repeats (the recipe's, torchao's or the format's
  ///   error is its ``PipelineError/cause``); when the input holds no tensors; and for a recipe
  ///   that quantizes, when the input cannot be quantized as it is (``QuantizingInputCheck``) or
  ///   the recipe would quantize none of its tensors.
  public init(checkpoint: Checkpoint, recipe: Recipe, options: ConversionOptions) throws(PipelineError) {
    guard !checkpoint.tensors.isEmpty else {
      throw PipelineError(.invalidInput, "\(checkpoint.path) holds no tensors", path: checkpoint.path)
    }
    if recipe.dequantizesInput { try QuantizingInputCheck.check(checkpoint, quantizing: recipe.quantizes) }
    let positions = Dictionary(uniqueKeysWithValues: checkpoint.files.enumerated().map { (ObjectIdentifier($1), $0) })
    let inputs = checkpoint.tensors.map { Input(file: positions[ObjectIdentifier($0.file)]!, tensor: $0.tensor) }
    var isDirectory: ObjCBool = false
    let directory =
      FileManager.default.fileExists(atPath: checkpoint.path, isDirectory: &isDirectory) && isDirectory.boolValue
      ? checkpoint.path : nil
    let architecture = try MoEArchitecture.of(
      directory: directory, tensorNames: inputs.lazy.map(\.tensor.name), path: checkpoint.path)
    let parameters = try ModelParameter.parameters(of: inputs, architecture: architecture, path: checkpoint.path)
    var entries: [Entry] = []
    entries.reserveCapacity(inputs.count)
    // The config each rule quantized with: its own, or for transposed experts the adapted one.
    var ruleConfigs: [Int: TorchAOConfig] = [:]
    // The last quantized parameter's flattened entry and layout, which the next one of the same
    // config, format and shape renames instead of computing them again.
    var lastFlattened:
      (config: TorchAOConfig, format: FloatFormat, shape: [Int], flattened: FlattenedEntry, layout: QuantizedLayout)?
    for parameter in parameters {
      let file = checkpoint.files[parameter.inputs[0].file].path
      let refused = { (error: any Error & Sendable) in
        PipelineError(
          .invalidInput, "\(file): tensor '\(parameter.name)': \(error)", path: file, tensor: parameter.name,
          cause: error)
      }
      var selection: Selection
      do throws(RecipeError) {
        selection = try recipe.selection(
          name: parameter.name, shape: parameter.shape, dtype: parameter.dtype, role: parameter.role)
      } catch {
        // The recipe's error names the tensor already.
        throw PipelineError(.invalidInput, "\(file): \(error)", path: file, tensor: parameter.name, cause: error)
      }
      if case .quantize(let config) = selection, parameter.role == .routedExperts {
        let adapted: TorchAOConfig
        do throws(TorchAOError) {
          adapted = try Self.expertConfig(config, for: parameter)
        } catch {
          throw refused(error)
        }
        selection = .quantize(adapted)
      }
      if case .quantize(let config) = selection, !recipe.rules.isEmpty,
        let rule = recipe.matchingRule(for: parameter.name), let index = recipe.rules.firstIndex(of: rule)
      {
        guard ruleConfigs.updateValue(config, forKey: index).map({ $0 == config }) ?? true else {
          throw refused(
            PipelineError(
              .invalidInput,
              "rule '\(rule.pattern)' quantizes experts stored [E, in, out] along their output channels and other "
                + "weights per row; config.json can give a rule one config, so split it in two"))
        }
      }
      switch selection {
      case .quantize(let config):
        guard let format = FloatFormat(rawValue: parameter.dtype.rawValue) else {
          throw refused(PipelineError(.invalidInput, "cannot quantize \(parameter.dtype.rawValue)"))
        }
        let source = TensorInfo(
          name: parameter.fileName, dtype: parameter.dtype, shape: parameter.shape,
          dataOffsets: 0..<parameter.inputs.reduce(0) { $0 + $1.tensor.byteCount })
        let flattened: FlattenedEntry
        let layout: QuantizedLayout
        if let last = lastFlattened, last.config == config, last.format == format, last.shape == parameter.shape {
          flattened = last.flattened.renamed(to: parameter.fileName)
          layout = last.layout
        } else {
          do throws(TorchAOError) {
            flattened = try config.flattenedEntry(name: parameter.fileName, shape: parameter.shape, source: format)
          } catch {
            throw refused(error)
          }
          do throws(QuantizationError) {
            layout = try config.scheme(source: format).outputLayout(shape: parameter.shape)
          } catch {
            throw refused(error)
          }
          lastFlattened = (config, format, parameter.shape, flattened, layout)
        }
        entries.append(
          Entry(
            source: source, inputs: parameter.inputs, parameter: parameter.name, config: config, reason: nil,
            flattened: flattened, layout: layout))
      case .keep(let reason):
        for input in parameter.inputs {
          entries.append(
            Entry(
              source: input.tensor, inputs: [input], parameter: parameter.name, config: nil, reason: reason,
              flattened: .plain(input.tensor.name, dtype: input.tensor.dtype, shape: input.tensor.shape), layout: nil))
        }
      }
    }
    // The parameters of the quantized entries (not the entries: copying 100 000 of them costs).
    let quantized = entries.compactMap { $0.config != nil ? $0.parameter : nil }
    if recipe.quantizes && quantized.isEmpty {
      throw PipelineError(
        .invalidInput,
        "recipe \(recipe.name) quantizes none of the \(entries.count) tensors of \(checkpoint.path) (no 2-D "
          + "BF16/F16/F32 Linear weight, and no rule matches one); the output would be an unchanged copy. Use "
          + "--recipe reshard for that, or a recipe with rules that select the weights.",
        path: checkpoint.path)
    }
    if quantized.isEmpty && TorchAOCheckpoint.hasTorchAOMetadata(checkpoint) {
      try Self.checkKeptTorchAOMetadata(of: checkpoint)
    }
    try Self.checkPrefixCollisions(quantized)
    try self.init(
      entries: entries,
      quantizationConfig: quantized.isEmpty ? nil : recipe.transformersQuantizationConfig(ruleConfigs: ruleConfigs),
      inputMetadata: checkpoint.files.first?.header.metadata, options: options)
    dropsQuantizationConfig = checkpoint.isDequantized && quantized.isEmpty
  }

  /// How the output's `config.json` differs from the input's.
  public enum ConfigChange: Sendable, Equatable {
    /// `quantization_config` set to this (transformers' config of the recipe).
    case quantizationConfig(JSONValue)
    /// `quantization_config` removed: the input was quantized, the output is its dequantized
    /// values.
    case noQuantizationConfig
  }

  /// The `quantization_config` transformers writes into `config.json` for this plan, or `nil`
  /// when nothing is quantized.
  public private(set) var quantizationConfig: JSONValue?

  /// Whether the input was read dequantized (``Checkpoint/isDequantized``) and nothing is
  /// quantized again: the output's `config.json` has no `quantization_config`.
  public private(set) var dropsQuantizationConfig = false

  /// How the output's `config.json` differs from the input's, or `nil` when it is a copy.
  public var configChange: ConfigChange? {
    if let quantizationConfig { return .quantizationConfig(quantizationConfig) }
    return dropsQuantizationConfig ? .noQuantizationConfig : nil
  }

  private init(
    entries: [Entry], quantizationConfig: JSONValue?, inputMetadata: [String: String]?, options: ConversionOptions
  ) throws(PipelineError) {
    self.entries = entries
    self.quantizationConfig = quantizationConfig
    self.options = options
    let stored = entries.flatMap { $0.flattened.stored.map(\.spec) }
    var placementStarts = [0]
    placementStarts.reserveCapacity(entries.count + 1)
    for entry in entries { placementStarts.append(placementStarts.last! + entry.flattened.stored.count) }
    var seen = Set<ExactName>(minimumCapacity: stored.count)
    for spec in stored where !seen.insert(ExactName(spec.name)).inserted {
      throw PipelineError(.invalidInput, "two tensors would be stored as '\(spec.name)'", tensor: spec.name)
    }
    var sizes: [Int] = []
    for spec in stored {
      do throws(SafeTensorsError) {
        sizes.append(try spec.byteCount())
      } catch {
        throw PipelineError(.invalidInput, "\(error)", tensor: spec.name, cause: error)
      }
    }
    totalSize = sizes.reduce(0, +)
    totalParameters = entries.reduce(0) { $0 + $1.source.elementCount }

    if entries.contains(where: { $0.config != nil }) {
      let extra = ["format": "pt"]
      // One entry per parameter: the copied per-expert tensors of a fused parameter share it.
      var listed = Set<ExactName>(minimumCapacity: entries.count)
      var descriptions: [(name: String, description: TensorDescription)] = []
      for entry in entries where listed.insert(ExactName(entry.parameter)).inserted {
        descriptions.append((entry.parameter, entry.flattened.description))
      }
      try Self.checkTorchAONames(descriptions.map(\.name), extraKeys: Set(extra.keys))
      metadata = TorchAOMetadata.encoded(entries: descriptions, extra: extra)
    } else {
      // Nothing quantized: keep what the input says (a torchao checkpoint resharded keeps its
      // metadata), and transformers' "format".
      metadata = (inputMetadata ?? [:]).merging(["format": "pt"]) { _, new in new }
    }

    let groups = Self.split(sizes: sizes, maxShardSize: options.maxShardSize)
    var shards: [Shard] = []
    // Where each stored tensor went: its shard and its position in that shard's header.
    var slots = [(shard: Int, position: Int)](repeating: (0, 0), count: stored.count)
    let metadataJSON = SafeTensorsHeader.metadataJSON(metadata)
    for (index, group) in groups.enumerated() {
      let fileName =
        groups.count == 1
        ? "model.safetensors"
        : "model-\(Self.fiveDigits(index + 1))-of-\(Self.fiveDigits(groups.count)).safetensors"
      let specs = group.map { stored[$0] }
      // The header's tensors in file order, as positions in `group`.
      let order = options.layout == .canonical ? SafeTensorsHeader.referenceOrder(specs) : Array(specs.indices)
      let header: SafeTensorsHeader
      do throws(SafeTensorsError) {
        // The names were checked unique above, all shards at once.
        header = try SafeTensorsHeader(metadata: metadata, uniquelyNamed: order.map { specs[$0] })
      } catch {
        throw PipelineError(.invalidInput, "output shard \(fileName): \(error)", tensor: error.tensor, cause: error)
      }
      for (position, member) in order.enumerated() { slots[group[member]] = (index, position) }
      shards.append(Shard(fileName: fileName, header: header, headerBytes: header.encoded(metadataJSON: metadataJSON)))
    }
    self.shards = shards
    self.placements = slots.map { Placement(shard: $0.shard, tensor: shards[$0.shard].header.tensors[$0.position]) }
    self.placementStarts = placementStarts
  }

  /// Hugging Face's `split_torch_state_dict_into_shards`: tensors in order, a new shard when the
  /// next one would pass `maxShardSize`, and a tensor larger than that in a shard of its own.
  static func split(sizes: [Int], maxShardSize: Int) -> [[Int]] {
    var shards: [[Int]] = []
    var current: [Int] = []
    var currentSize = 0
    for (index, size) in sizes.enumerated() {
      if size > maxShardSize {
        shards.append([index])
        continue
      }
      if currentSize + size > maxShardSize {
        shards.append(current)
        current = []
        currentSize = 0
      }
      current.append(index)
      currentSize += size
    }
    if !current.isEmpty || shards.isEmpty { shards.append(current) }
    return shards
  }

  private static func fiveDigits(_ value: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, 5 - text.count)) + text
  }
}
