import SafeTensors

/// An error about torchao metadata or the tensors it describes.
///
/// Every message names the tensor and, where known, the file, and the ``Code`` names the rule.
public struct TorchAOError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The rule that was broken.
  public enum Code: String, Sendable, CaseIterable {
    /// `tensor_names` is missing, not JSON, not a list of strings, or names an entry that does
    /// not exist.
    case tensorNames = "tensor-names"
    /// A metadata entry is not the JSON object torchao writes.
    case malformedEntry = "malformed-entry"
    /// The shards of a checkpoint carry different torchao metadata (transformers needs the full
    /// metadata in every shard).
    case shardMetadata = "shard-metadata"
    /// A `_type`, at the top or nested, is not on torchao's allowlist.
    case unknownType = "unknown-type"
    /// A data part a subclass lists is not in any file.
    case missingPart = "missing-part"
    /// A file holds a part the subclass does not list.
    case extraPart = "extra-part"
    /// A part has the wrong dtype.
    case partDType = "part-dtype"
    /// A part has the wrong shape, or the shape disagrees with `block_size`.
    case partShape = "part-shape"
    /// The attributes describe a quantization safeshard does not implement.
    case unsupported = "unsupported"
    /// Reading the tensors failed.
    case io = "io"
  }

  public var code: Code
  public var message: String
  public var tensor: String?
  public var file: String?

  public init(_ code: Code, _ message: String, tensor: String? = nil, file: String? = nil) {
    self.code = code
    self.message = message
    self.tensor = tensor
    self.file = file
  }

  /// `FILE: tensor 'NAME': MESSAGE [rule CODE]`, leaving out what is not known.
  public var description: String {
    var text = ""
    if let file { text += "\(file): " }
    if let tensor { text += "tensor '\(tensor)': " }
    return text + message + " [rule \(code.rawValue)]"
  }
}
