/// An error from reading a pickle checkpoint: its container, its pickle, or what the pickle
/// describes.
///
/// Every error names the rule that was broken (``Code``), and where known the file, the byte
/// offset and the state-dict entry, so that a message alone is enough to find the problem.
public struct PickleError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The rule that was broken.
  public enum Code: String, Sendable, CaseIterable {
    /// The file is neither a torch.save zip archive nor a legacy torch.save pickle.
    case unknownFormat = "unknown-format"
    /// The file is in the tar format of torch before 0.4, which is never read.
    case tarFormat = "tar-format"
    /// The zip container is malformed: its directories, headers or bounds.
    case zipFormat = "zip-format"
    /// A zip entry is encrypted, compressed, or spans disks.
    case zipEntry = "zip-entry"
    /// A zip entry name is unsafe (`..`, absolute, backslash), repeated, or outside the single
    /// top folder.
    case zipEntryName = "zip-entry-name"
    /// The archive is a TorchScript archive (`constants.pkl`, `code/`).
    case torchScript = "torchscript"
    /// The checkpoint is big-endian.
    case bigEndian = "big-endian"
    /// The pickle uses an opcode outside the allowlist.
    case opcode = "opcode"
    /// The pickle names a global outside the allowlist.
    case global = "global"
    /// The pickle is malformed: truncated, stack or mark underflow, bad memo reference, wrong
    /// operand types, trailing bytes.
    case malformedPickle = "malformed-pickle"
    /// The pickle nests deeper than allowed, or a value is too large to inspect.
    case tooDeep = "too-deep"
    /// The pickle's top-level object or one of its entries has a shape that is not a tensor
    /// checkpoint.
    case unexpectedObject = "unexpected-object"
    /// A tensor kind that is never read: quantized, sparse, nested, meta, device-built, complex,
    /// conjugated or negated.
    case unsupportedTensor = "unsupported-tensor"
    /// A storage's size disagrees with its record, or a record is missing.
    case storageSize = "storage-size"
    /// A tensor's sizes, strides or offset are invalid or overflow 64 bits.
    case invalidView = "invalid-view"
    /// A view reaches outside its storage.
    case viewOutOfBounds = "view-out-of-bounds"
    /// A tensor subclass, attribute or state key outside the torchao allowlist.
    case subclass = "subclass"
    /// A legacy AffineQuantizedTensor whose layout or parameters cannot be dequantized.
    case affineQuantized = "affine-quantized"
    /// A read failed or the file changed while open.
    case io = "io"
  }

  /// The rule that was broken.
  public var code: Code
  /// What is wrong, in words.
  public var message: String
  /// The file the problem is in, if known.
  public var file: String?
  /// The byte offset of the problem: in the file for container problems, in the pickle
  /// (`data.pkl`, or the file for the legacy format) for pickle problems.
  public var offset: Int?
  /// The state-dict entry the problem is about, if known.
  public var tensor: String?

  /// Creates an error.
  public init(_ code: Code, _ message: String, file: String? = nil, offset: Int? = nil, tensor: String? = nil) {
    self.code = code
    self.message = message
    self.file = file
    self.offset = offset
    self.tensor = tensor
  }

  /// `FILE: byte N: tensor 'NAME': MESSAGE [rule CODE]`, leaving out what is not known.
  public var description: String {
    var text = ""
    if let file { text += "\(file): " }
    if let offset { text += "byte \(offset): " }
    if let tensor { text += "tensor '\(tensor)': " }
    return text + message + " [rule \(code.rawValue)]"
  }

  /// The same error with the file and entry filled in where they were not known.
  func located(file: String? = nil, tensor: String? = nil) -> PickleError {
    var copy = self
    if copy.file == nil { copy.file = file }
    if copy.tensor == nil { copy.tensor = tensor }
    return copy
  }
}
