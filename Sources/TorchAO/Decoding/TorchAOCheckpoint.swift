import Quantization
import SafeTensors

/// A checkpoint in torchao's safetensors format, decoded: every quantized weight rebuilt from
/// its metadata entry and its parts, wherever in the shards they are.
///
/// Decoding reads headers only. It checks what torchao and transformers need to load the
/// checkpoint: the metadata is torchao's (``TorchAOMetadata/init(decoding:)``: allowlisted
/// `_type`s only) and the same in every shard; every part a subclass lists is stored, with the
/// dtype and shape its scheme gives for its `block_size` and shape; no stored tensor other than
/// a weight's parts looks like a part the subclass does not list.
///
/// ```swift
/// let checkpoint = try TorchAOCheckpoint(Checkpoint(path: "out/model"))
/// for weight in checkpoint.weights {
///   let values = try weight.dequantize()   // [Float], row-major, weight.shape
///   print(weight.name, weight.summary, values.prefix(4))
/// }
/// let bias = try checkpoint.floatValues(of: "model.layers.0.self_attn.q_proj.bias")
/// ```
public struct TorchAOCheckpoint: Sendable {
  /// The files.
  public let checkpoint: Checkpoint
  /// The metadata (merged over the shards, as transformers merges it).
  public let metadata: TorchAOMetadata
  /// The quantized weights, in `tensor_names` order.
  public let weights: [QuantizedWeight]
  /// The position in ``weights`` of each metadata entry's weight, or -1.
  private let weightOfEntry: [Int]

  /// Decodes `checkpoint`. `storedName` gives the name a metadata entry's parts are stored
  /// under: the entry's own (the default), or for a MoE model whose modules transformers renames
  /// in memory, the file's (Mixtral's `mlp.experts.gate_up_proj` is stored as
  /// `block_sparse_moe.experts._gate_up_proj_qdata`).
  ///
  /// - Throws: the first problem ``problems(in:storedName:)`` finds.
  public init(_ checkpoint: Checkpoint, storedName: (String) -> String = { $0 }) throws(TorchAOError) {
    var problems: [TorchAOError] = []
    guard let decoded = Self.decode(checkpoint, storedName: storedName, problems: &problems), problems.isEmpty else {
      throw problems.first!
    }
    self = decoded
  }

  /// Every problem with the torchao metadata and parts of `checkpoint`; `[]` when it decodes.
  /// `storedName` is as for ``init(_:storedName:)``.
  public static func problems(in checkpoint: Checkpoint, storedName: (String) -> String = { $0 }) -> [TorchAOError] {
    var problems: [TorchAOError] = []
    _ = decode(checkpoint, storedName: storedName, problems: &problems)
    return problems
  }

  /// Whether any file of `checkpoint` carries torchao metadata (`tensor_names`).
  public static func hasTorchAOMetadata(_ checkpoint: Checkpoint) -> Bool {
    checkpoint.files.contains { TorchAOMetadata.isTorchAO($0.header.metadata) }
  }

  private init(checkpoint: Checkpoint, metadata: TorchAOMetadata, weights: [QuantizedWeight], weightOfEntry: [Int]) {
    self.checkpoint = checkpoint
    self.metadata = metadata
    self.weights = weights
    self.weightOfEntry = weightOfEntry
  }

  /// The quantized weight named `name`, or `nil`.
  public func weight(named name: String) -> QuantizedWeight? {
    // A weight's name is its metadata entry's, and entries are distinct: the metadata's table
    // finds it.
    guard let entry = metadata.position(of: name), weightOfEntry[entry] >= 0 else { return nil }
    return weights[weightOfEntry[entry]]
  }

  /// The values of the state-dict entry `name` as `Float`s: dequantized for a quantized weight,
  /// widened for a plain BF16, F16 or F32 tensor.
  ///
  /// - Throws: `io` when the tensor is missing or unreadable, `unsupported` for another dtype.
  public func floatValues(of name: String) throws(TorchAOError) -> [Float] {
    if let weight = weight(named: name) { return try weight.dequantize() }
    do {
      let file = try checkpoint.file(holding: name)
      let tensor = try file.tensor(named: name)
      guard let format = FloatFormat(rawValue: tensor.dtype.rawValue) else {
        throw TorchAOError(
          .unsupported, "a \(tensor.dtype.rawValue) tensor has no float values", tensor: name, file: file.path)
      }
      let bytes = try file.bytes(of: tensor)
      return bytes.withUnsafeBytes { raw in (0..<tensor.elementCount).map { format.value(at: $0, in: raw.baseAddress!) }
      }
    } catch let error as TorchAOError {
      throw error
    } catch {
      throw TorchAOError(.io, "\(error)", tensor: name)
    }
  }

  private static func decode(
    _ checkpoint: Checkpoint, storedName: (String) -> String, problems: inout [TorchAOError]
  ) -> TorchAOCheckpoint? {
    // transformers merges every shard's metadata (dict.update); all must carry the full set.
    // Shards that carry the first one's (usually all, often sharing its storage) leave the merge
    // as it is.
    let first = checkpoint.files.first?.header.metadata ?? [:]
    var merged = first
    for file in checkpoint.files.dropFirst() {
      let metadata = file.header.metadata ?? [:]
      if metadata != first {
        problems.append(
          TorchAOError(
            .shardMetadata,
            "its __metadata__ differs from the first shard's; transformers needs the full metadata in every shard",
            file: file.path))
        merged.merge(metadata) { _, new in new }
      }
    }
    let metadata: TorchAOMetadata
    do {
      metadata = try TorchAOMetadata(decoding: merged)
    } catch {
      var located = error
      located.file = located.file ?? checkpoint.path
      problems.append(located)
      return nil
    }

    var weights: [QuantizedWeight] = []
    var weightOfEntry = [Int](repeating: -1, count: metadata.entries.count)
    var owners: [(prefix: String, name: String, description: TensorDescription)] = []
    owners.reserveCapacity(metadata.entries.count)
    var numerics: Numerics?
    // Which stored tensors are parts of a weight, by position in `checkpoint.tensors`.
    var isPart = [Bool](repeating: false, count: checkpoint.tensorCount)
    for (entry, (name, description)) in metadata.entries.enumerated() where description.subclass != nil {
      let prefix = FlattenedName.prefix(of: storedName(name))
      owners.append((prefix, name, description))
      do {
        let weight = try weight(name, partPrefix: prefix, description, in: checkpoint, last: &numerics, isPart: &isPart)
        weightOfEntry[entry] = weights.count
        weights.append(weight)
      } catch {
        var located = error
        located.file = located.file ?? checkpoint.path
        problems.append(located)
      }
    }
    // A stored tensor that looks like a part of a subclass but is not one of its parts. (One that
    // is a part of a weight is not also a stray part of another whose prefix it starts with:
    // torchao's loader takes each weight's parts by name, as `weight` does.) The table of
    // prefixes is built only when some stored tensor is not a part.
    lazy var prefixes: [String: (name: String, description: TensorDescription)] = {
      var prefixes: [String: (name: String, description: TensorDescription)] = [:]
      prefixes.reserveCapacity(owners.count)
      for owner in owners { prefixes[owner.prefix] = (owner.name, owner.description) }
      return prefixes
    }()
    var position = 0
    for file in checkpoint.files {
      for tensor in file.header.tensors {
        defer { position += 1 }
        guard !isPart[position], let (owner, description, partStart) = owner(of: tensor.name, prefixes: prefixes) else {
          continue
        }
        let part = String(tensor.name[partStart...])
        if !description.tensorDataNames.contains(part) {
          problems.append(
            TorchAOError(
              .extraPart, "is stored as part \"\(part)\" of \(owner), which lists only \(description.tensorDataNames)",
              tensor: tensor.name, file: file.path))
        }
      }
    }
    return TorchAOCheckpoint(checkpoint: checkpoint, metadata: metadata, weights: weights, weightOfEntry: weightOfEntry)
  }

  /// The subclass entry whose part-name prefix `name` starts with, if any, and where the part
  /// name after that prefix starts.
  private static func owner(
    of name: String, prefixes: [String: (name: String, description: TensorDescription)]
  ) -> (name: String, description: TensorDescription, partStart: String.Index)? {
    guard let boundary = partBoundary(of: name) else { return nil }
    var index = boundary
    while let underscore = name[index...].firstIndex(of: "_") {
      if let owner = prefixes[String(name[...underscore])] {
        return (owner.name, owner.description, name.index(after: underscore))
      }
      index = name.index(after: underscore)
    }
    return nil
  }

  /// Where the part of `name` after its last `._` starts (after a leading `_` when it has no
  /// `._`), or `nil`. An ASCII name is searched by bytes; any other by Foundation, which
  /// compares composed characters.
  private static func partBoundary(of name: String) -> String.Index? {
    let utf8 = name.utf8
    if utf8.allSatisfy({ $0 < 0x80 }) {
      var index = utf8.endIndex
      while index > utf8.startIndex {
        let previous = utf8.index(before: index)
        if utf8[previous] == UInt8(ascii: "_"), previous > utf8.startIndex,
          utf8[utf8.index(before: previous)] == UInt8(ascii: ".")
        {
          return index
        }
        index = previous
      }
      return utf8.first == UInt8(ascii: "_") ? utf8.index(after: utf8.startIndex) : nil
    }
    return name.range(of: "._", options: .backwards)?.upperBound
      ?? (name.hasPrefix("_") ? name.index(after: name.startIndex) : nil)
  }

  /// A weight's numerics and what they were computed from: the description and its parts'
  /// dtypes and shapes. A model's weights share a few descriptions (``TorchAOMetadata`` decodes
  /// each text once) and part shapes, so most weights reuse the numerics of the one before.
  private struct Numerics {
    var description: TensorDescription
    var parts: [QuantizedWeight.Part]
    var scheme: any QuantizationScheme
    var shape: [Int]
    var layout: QuantizedLayout

    /// Whether these numerics are those of `description` with `parts`. The attributes must be
    /// the same array, not equal JSON (`1.0` equals `1` as JSON but is no block size).
    func fits(_ description: TensorDescription, _ parts: [QuantizedWeight.Part]) -> Bool {
      let attributes = self.description.attributes
      let sameAttributes =
        attributes.isEmpty && description.attributes.isEmpty
        || attributes.withUnsafeBufferPointer { old in
          description.attributes.withUnsafeBufferPointer { new in old.baseAddress == new.baseAddress }
        }
      return sameAttributes && self.description.subclass == description.subclass
        && self.description.tensorDataNames == description.tensorDataNames
        && self.parts.elementsEqual(parts) { $0.tensor.dtype == $1.tensor.dtype && $0.tensor.shape == $1.tensor.shape }
    }
  }

  /// The weight `name`, whose parts are stored under `partPrefix` (``FlattenedName/prefix(of:)``
  /// of its stored name) followed by the part name. `last` holds the numerics of the weight
  /// before, reused when they fit, and on return this weight's. The parts' positions in
  /// `checkpoint.tensors` are set in `isPart`.
  private static func weight(
    _ name: String, partPrefix: String, _ description: TensorDescription, in checkpoint: Checkpoint,
    last: inout Numerics?, isPart: inout [Bool]
  ) throws(TorchAOError) -> QuantizedWeight {
    let names = description.tensorDataNames
    var stored: [QuantizedWeight.Part] = []
    stored.reserveCapacity(names.count)
    var previous: Int?
    for part in names {
      let partName = partPrefix + part
      let found = previous.map { checkpoint.location(of: partName, after: $0) } ?? checkpoint.location(of: partName)
      guard let (tensor, file, position) = found else {
        throw TorchAOError(
          .missingPart, "\(description.subclass ?? "") part \"\(part)\" (\(partName)) is in no file", tensor: name)
      }
      stored.append(QuantizedWeight.Part(tensor: tensor, file: file))
      isPart[position] = true
      previous = position
    }
    let numerics: Numerics
    if let last, last.fits(description, stored) {
      numerics = last
    } else {
      let (scheme, shape) = try description.scheme(tensor: name) { part in
        names.firstIndex(of: part).map { stored[$0].tensor }
      }
      let layout: QuantizedLayout
      do {
        layout = try scheme.outputLayout(shape: shape)
      } catch {
        throw TorchAOError(.partShape, "the shape \(shape) does not fit the scheme: \(error)", tensor: name)
      }
      // The names are distinct on both sides (decoding checks `_tensor_data_names`; a layout
      // names each part once), so equal counts and one inclusion make the sets equal, without
      // building two sets for each of 100 000 weights.
      guard layout.parts.count == names.count, layout.parts.allSatisfy({ names.contains($0.name.rawValue) }) else {
        throw TorchAOError(
          .malformedEntry,
          "_tensor_data_names \(names) should be \(Set(layout.parts.map(\.name.rawValue)).sorted())", tensor: name)
      }
      numerics = Numerics(description: description, parts: stored, scheme: scheme, shape: shape, layout: layout)
      last = numerics
    }
    let (scheme, shape, layout) = (numerics.scheme, numerics.shape, numerics.layout)
    var parts: [PartName: QuantizedWeight.Part] = [:]
    for part in layout.parts {
      let found = stored[names.firstIndex(of: part.name.rawValue)!]
      guard found.tensor.dtype.rawValue == part.elementType.rawValue else {
        throw TorchAOError(
          .partDType,
          "part \(part.name.rawValue) is \(found.tensor.dtype.rawValue), expected \(part.elementType.rawValue)",
          tensor: found.tensor.name, file: found.file.path)
      }
      guard found.tensor.shape == part.shape else {
        throw TorchAOError(
          .partShape, "part \(part.name.rawValue) has shape \(found.tensor.shape), expected \(part.shape) for \(shape)",
          tensor: found.tensor.name, file: found.file.path)
      }
      parts[part.name] = found
    }
    return QuantizedWeight(
      name: name, description: description, scheme: scheme, shape: shape, parts: parts, layout: layout)
  }
}
