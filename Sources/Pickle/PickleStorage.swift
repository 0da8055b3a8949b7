import SafeTensors

/// One storage of a pickle checkpoint: a run of bytes in the file that tensors view.
///
/// Several tensors may view one storage (tied weights, views); a storage is often larger than
/// any one tensor that views it, since torch.save writes whole storages.
public struct PickleStorage: Sendable, Hashable {
  /// The storage's key: its record name under `data/` in a zip archive, its id in a legacy file.
  public var key: String
  /// The storage's own element type (`U8` for torch's `UntypedStorage`).
  public var elementType: DType
  /// The number of elements of ``elementType`` the pickle declares (and the file holds).
  public var elementCount: Int
  /// The absolute byte range of the storage's data in the file.
  public var byteRange: Range<Int>

  /// Creates a storage.
  public init(key: String, elementType: DType, elementCount: Int, byteRange: Range<Int>) {
    self.key = key
    self.elementType = elementType
    self.elementCount = elementCount
    self.byteRange = byteRange
  }
}
