using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using OnnxQuant.IR;

namespace OnnxQuant.Statistics;

/// <summary>
/// A hash that tells models apart cheaply: the graph's structure (nodes with their attributes, inputs, outputs), every
/// initializer's name, type and shape, and a few small windows of each initializer's bytes. It reads at most a few
/// hundred bytes per weight, so it costs nothing next to loading the model, yet a re-exported, smoothed or quantized
/// model gets another fingerprint.
/// </summary>
public static class ModelFingerprint
{
    private const int Window = 32;

    /// <summary>Lower-case hex SHA-256.</summary>
    public static string Compute(Graph graph)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        AddString(hash, "onnxquant-fingerprint-v1");
        foreach (var input in graph.Inputs)
            AddString(hash, "in:" + input.Name);
        foreach (var output in graph.Outputs)
            AddString(hash, "out:" + output.Name);
        foreach (var node in graph.Nodes)
        {
            // The node's proto bytes: op, domain, inputs, outputs and attributes in the order the file has them.
            var bytes = node.ToByteArray();
            AddLong(hash, bytes.Length);
            hash.AppendData(bytes);
        }
        foreach (var tensor in graph.Initializers.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            AddString(hash, "init:" + tensor.Name);
            AddLong(hash, (long)tensor.DataType);
            AddLong(hash, tensor.Shape.Count);
            foreach (var d in tensor.Shape)
                AddLong(hash, d);
            AddContentSample(hash, tensor.RawBytes);
            // Touching a mapped tensor faults in the kernel's read-around (up to MBs per window), which stayed resident
            // until the pass read that weight: ~450 MB at the start of a W8 pass over a 3.8 GB model.
            tensor.ReleaseMappedPages();
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    // Start, middle and end: a changed scale, smoothing fold or re-quantization touches all of them in practice.
    private static void AddContentSample(IncrementalHash hash, ReadOnlySpan<byte> raw)
    {
        AddLong(hash, raw.Length);
        if (raw.Length <= 3 * Window)
        {
            hash.AppendData(raw);
            return;
        }
        hash.AppendData(raw[..Window]);
        int mid = raw.Length / 2 - Window / 2;
        hash.AppendData(raw.Slice(mid, Window));
        hash.AppendData(raw[^Window..]);
    }

    private static void AddString(IncrementalHash hash, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        AddLong(hash, bytes.Length);
        hash.AppendData(bytes);
    }

    private static void AddLong(IncrementalHash hash, long value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, value);
        hash.AppendData(b);
    }
}
