import Quantization
import SafeTensors

/// A torchao tensor subclass found in a checkpoint: its description, the numerics that made it,
/// its logical shape, and where each of its data parts is stored.
public struct QuantizedWeight: Sendable {
  /// One stored data part.
  public struct Part: Sendable {
    /// The tensor entry (its name is the flattened `<module>._<param>_<part>`).
    public var tensor: TensorInfo
    /// The file that holds it.
    public var file: SafeTensorsFile
  }

  /// The state-dict name, e.g. `model.layers.0.mlp.down_proj.weight`.
  public var name: String
  /// The metadata entry.
  public var description: TensorDescription
  /// Numerics that dequantize the parts. What the file records is all it knows: an intx
  /// weight's mapping (how its scales were chosen) is not stored, so its scheme says asymmetric.
  public var scheme: any QuantizationScheme
  /// The shape of the high-precision weight the parts stand for.
  public var shape: [Int]
  /// The parts, by name.
  public var parts: [PartName: Part]
  /// The scheme's layout for ``shape``: the parts' shapes and how a chunk of rows maps onto them.
  public var layout: QuantizedLayout

  /// A one-line account of the scheme, e.g. `Int8Tensor int8 per-row, bfloat16 [128, 128]`.
  public var summary: String {
    "\(description.subclass ?? "Tensor") \(TensorDescription.schemeSummary(scheme)), \(scheme.source.torchName) \(shape)"
  }

  /// The high-precision values, by torchao's dequantize formula, rounded to the weight's dtype
  /// and returned as `Float`s in row-major order.
  ///
  /// Reads every part whole: meant for inspection and checks, not for streaming.
  ///
  /// - Throws: `io` when a part cannot be read; `unsupported` when the parts do not dequantize.
  public func dequantize() throws(TorchAOError) -> [Float] {
    var bytes: [PartName: [UInt8]] = [:]
    for (name, part) in parts {
      do {
        bytes[name] = try part.file.bytes(of: part.tensor)
      } catch {
        throw TorchAOError(.io, "\(error)", tensor: part.tensor.name, file: part.file.path)
      }
    }
    do {
      return try scheme.dequantize(bytes, shape: shape)
    } catch {
      throw TorchAOError(.unsupported, "\(error)", tensor: self.name)
    }
  }
}
