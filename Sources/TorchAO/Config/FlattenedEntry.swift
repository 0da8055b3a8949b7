import Quantization
import SafeTensors

/// What one state-dict entry becomes in torchao's flattened layout: its metadata description
/// and the tensors stored for it.
///
/// A quantized weight `m.weight` becomes one tensor per data part (`m._weight_qdata`,
/// `m._weight_scale`, …) with the dtypes and shapes of its scheme's layout; a plain tensor is
/// stored as it is, under its own name.
public struct FlattenedEntry: Sendable, Equatable {
  /// One stored tensor.
  public struct Stored: Sendable, Equatable {
    /// The name, dtype and shape it is stored with.
    public var spec: TensorSpec
    /// The data part it holds, or `nil` for a plain tensor.
    public var part: PartName?
  }

  /// The state-dict name.
  public var name: String
  /// The metadata entry.
  public var description: TensorDescription
  /// The stored tensors, in the order torchao lists the parts.
  public var stored: [Stored]

  /// A plain tensor, stored unchanged.
  public static func plain(_ name: String, dtype: DType, shape: [Int]) -> FlattenedEntry {
    FlattenedEntry(
      name: name, description: .plainTensor,
      stored: [Stored(spec: TensorSpec(name: name, dtype: dtype, shape: shape), part: nil)])
  }

  /// The same entry for the state-dict entry `name`: the same description, dtypes and shapes,
  /// stored under `name`'s part names. A model's weights share a few shapes, so a plan
  /// flattens each shape once and renames the result for the weights that follow.
  public func renamed(to name: String) -> FlattenedEntry {
    guard description.subclass != nil else {
      return .plain(name, dtype: stored[0].spec.dtype, shape: stored[0].spec.shape)
    }
    let prefix = FlattenedName.prefix(of: name)
    return FlattenedEntry(
      name: name, description: description,
      stored: zip(stored, description.tensorDataNames).map { stored, part in
        Stored(
          spec: TensorSpec(name: prefix + part, dtype: stored.spec.dtype, shape: stored.spec.shape), part: stored.part)
      })
  }
}

extension TorchAOConfig {
  /// The flattened entry of the weight `name` of `shape` in `source` format, quantized with this
  /// config (the caller has checked ``decision(shape:source:)``).
  ///
  /// - Throws: `unsupported` when the scheme cannot take the shape.
  public func flattenedEntry(name: String, shape: [Int], source: FloatFormat) throws(TorchAOError) -> FlattenedEntry {
    let description = description(shape: shape, source: source)
    let layout: QuantizedLayout
    do {
      layout = try scheme(source: source).outputLayout(shape: shape)
    } catch {
      throw TorchAOError(.unsupported, "\(error)", tensor: name)
    }
    var stored: [FlattenedEntry.Stored] = []
    let prefix = FlattenedName.prefix(of: name)
    for partName in description.tensorDataNames {
      guard let part = layout.parts.first(where: { $0.name.rawValue == partName }),
        let dtype = DType(rawValue: part.elementType.rawValue)
      else {
        throw TorchAOError(.unsupported, "the scheme has no part \(partName)", tensor: name)
      }
      stored.append(
        FlattenedEntry.Stored(
          spec: TensorSpec(name: prefix + partName, dtype: dtype, shape: part.shape),
          part: part.name))
    }
    return FlattenedEntry(name: name, description: description, stored: stored)
  }
}
