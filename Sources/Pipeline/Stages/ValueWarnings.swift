import Quantization

/// The warnings a quantized tensor's ``ScaleFindings`` call for (values that were NaN or
/// infinite in the input, and values that quantize to NaN), and a copied tensor's NaN and
/// infinity. torchao stores the same values, so the
/// output stays torchao's; the warning says where before a model's output turns to NaN.
enum ValueWarnings {
  /// One message per finding, for a tensor of `rowCount` rows; `[]` when there is none.
  static func messages(_ findings: ScaleFindings, rowCount: Int) -> [String] {
    let copied = "torchao stores the same"
    if findings.zeroTensorScale {
      return [
        "the tensor (or one of its experts) is all zeros: its per-tensor scale is 0, so every value quantizes "
          + "to NaN (\(copied))"
      ]
    }
    if findings.nonFiniteTensorScale {
      return [
        "the tensor holds NaN or infinity: its per-tensor scale is not finite, so every value quantizes to "
          + "NaN or infinity (\(copied))"
      ]
    }
    var messages: [String] = []
    if findings.nonFinite.count > 0 {
      messages.append(
        "\(where: findings.nonFinite, rowCount) \(findings.nonFinite.count == 1 ? "holds" : "hold") NaN or infinity "
          + "in the input, which quantizes to NaN, infinity or the format's largest value (\(copied))")
    }
    if findings.zero.count > 0 {
      messages.append(
        "\(where: findings.zero, rowCount) \(findings.zero.count == 1 ? "is" : "are") all zeros or too small for a "
          + "float8 scale: the scale is 0, so every zero there quantizes to NaN (\(copied))")
    }
    return messages
  }

  /// The warning for a copied tensor with `count` NaN or infinite values; `nil` for none.
  static func message(copiedNonFinite count: Int) -> String? {
    guard count > 0 else { return nil }
    return "\(count) \(count == 1 ? "value is" : "values are") NaN or infinity in the input (copied unchanged)"
  }
}

extension String.StringInterpolation {
  /// "row 3", "4 of 64 rows (first: row 3)", or "2 blocks" when rows are not known.
  fileprivate mutating func appendInterpolation(where rows: ScaleFindings.Rows, _ rowCount: Int) {
    if rows.countsBlocks || rows.first == nil {
      appendLiteral(rows.count == 1 ? "1 block" : "\(rows.count) blocks")
    } else if rows.count == 1, let first = rows.first {
      appendLiteral("row \(first)")
    } else if let first = rows.first {
      appendLiteral("\(rows.count) of \(rowCount) rows (first: row \(first))")
    }
  }
}
