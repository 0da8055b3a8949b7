import SafeTensors

/// The vocabulary of torchao's safetensors metadata that can be recognised without decoding.
public enum TorchAOTypes {
  /// The `_type` names torchao's `unflatten_tensor_state_dict` accepts for a tensor entry:
  /// the eight tensor subclasses, and `"Tensor"` for a plain tensor. Anything else is refused.
  public static let allowed: Set<String> = [
    "Float8Tensor", "Int4Tensor", "Int4TilePackedTo4dTensor", "IntxUnpackedToInt8Tensor", "Int8Tensor",
    "Int4PlainInt32Tensor", "MXTensor", "NVFP4Tensor", "Tensor",
  ]

  /// The `_type` of a metadata value that is a torchao tensor description, or `nil` when the
  /// value is not one (not JSON, not an object, or without a string `_type`).
  public static func type(ofMetadataValue value: String) -> String? {
    guard let json = try? JSONParser.parse(value) else { return nil }
    return json["_type"]?.string
  }
}
