import CBrotli
import CZlib
import NIOCore

/// A content coding Vantage can produce, in the order of preference used when a client accepts several.
public enum ContentCoding: String, Sendable, CaseIterable, Hashable {
    case brotli = "br"
    case gzip = "gzip"

    /// The value for `Content-Encoding`.
    public var token: String { rawValue }

    /// The file extension of a precompressed sibling (`app.js.br`, `app.js.gz`).
    public var fileExtension: String {
        switch self {
        case .brotli: return ".br"
        case .gzip: return ".gz"
        }
    }
}

/// One-shot compression of whole bodies. Used for cacheable static files, where the result is kept and reused, so
/// the cost is paid once per file version rather than once per request.
public enum Compressor {
    /// Compresses `input` with `coding`. Returns nil when the result would not be smaller than the input, in which
    /// case serving the identity form is better for everyone.
    ///
    /// - Parameter level: brotli quality (0-11) or gzip level (1-9); nil picks a level suited to on-the-fly use.
    public static func compress(_ input: ByteBuffer, coding: ContentCoding, level: Int? = nil) -> ByteBuffer? {
        switch coding {
        case .brotli: return brotli(input, quality: level ?? 5)
        case .gzip: return gzip(input, level: level ?? 6)
        }
    }

    static func brotli(_ input: ByteBuffer, quality: Int) -> ByteBuffer? {
        input.withUnsafeReadableBytes { source -> ByteBuffer? in
            var outputSize = BrotliEncoderMaxCompressedSize(source.count)
            guard outputSize > 0 else { return nil }
            var output = ByteBufferAllocator().buffer(capacity: outputSize)
            let ok = output.writeWithUnsafeMutableBytes(minimumWritableBytes: outputSize) { target -> Int in
                let status = BrotliEncoderCompress(
                    Int32(quality), BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, source.count,
                    source.bindMemory(to: UInt8.self).baseAddress, &outputSize,
                    target.bindMemory(to: UInt8.self).baseAddress)
                return status == BROTLI_TRUE ? outputSize : 0
            }
            return ok > 0 && output.readableBytes < source.count ? output : nil
        }
    }

    static func gzip(_ input: ByteBuffer, level: Int) -> ByteBuffer? {
        input.withUnsafeReadableBytes { source -> ByteBuffer? in
            var stream = z_stream()
            // windowBits 15 + 16 asks zlib for a gzip header and trailer rather than a raw zlib stream.
            guard deflateInit2_(
                &stream, Int32(level), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                Int32(MemoryLayout<z_stream>.size)) == Z_OK
            else { return nil }
            defer { deflateEnd(&stream) }
            let bound = Int(deflateBound(&stream, uLong(source.count))) + 32
            var output = ByteBufferAllocator().buffer(capacity: bound)
            let written = output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { target -> Int in
                stream.next_in = UnsafeMutablePointer(mutating: source.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = target.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(target.count)
                guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { return 0 }
                return target.count - Int(stream.avail_out)
            }
            return written > 0 && output.readableBytes < source.count ? output : nil
        }
    }
}

/// Decompression, used by tests and by anything that must read back what it wrote.
public enum Decompressor {
    /// Inflates a gzip or brotli body; nil when the input is not valid.
    public static func decompress(_ input: ByteBuffer, coding: ContentCoding, limit: Int = 64 << 20) -> ByteBuffer? {
        switch coding {
        case .brotli:
            return input.withUnsafeReadableBytes { source -> ByteBuffer? in
                var output = ByteBufferAllocator().buffer(capacity: limit)
                var size = limit
                let status = output.writeWithUnsafeMutableBytes(minimumWritableBytes: limit) { target -> Int in
                    let result = BrotliDecoderDecompress(
                        source.count, source.bindMemory(to: UInt8.self).baseAddress, &size,
                        target.bindMemory(to: UInt8.self).baseAddress)
                    return result == BROTLI_DECODER_RESULT_SUCCESS ? size : 0
                }
                return status > 0 || source.isEmpty ? output : nil
            }
        case .gzip:
            return input.withUnsafeReadableBytes { source -> ByteBuffer? in
                var stream = z_stream()
                guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                    return nil
                }
                defer { inflateEnd(&stream) }
                var output = ByteBufferAllocator().buffer(capacity: limit)
                let written = output.writeWithUnsafeMutableBytes(minimumWritableBytes: limit) { target -> Int in
                    stream.next_in = UnsafeMutablePointer(mutating: source.bindMemory(to: Bytef.self).baseAddress)
                    stream.avail_in = uInt(source.count)
                    stream.next_out = target.bindMemory(to: Bytef.self).baseAddress
                    stream.avail_out = uInt(target.count)
                    guard inflate(&stream, Z_FINISH) == Z_STREAM_END else { return -1 }
                    return target.count - Int(stream.avail_out)
                }
                return written >= 0 ? output : nil
            }
        }
    }
}
