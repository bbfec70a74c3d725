using System.Globalization;
using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Quantization;

namespace OnnxQuant.Passes;

/// <summary>Settings of <see cref="EmbeddingHeadPass"/>.</summary>
public sealed record EmbeddingHeadOptions
{
    /// <summary>4 or 8: token embeddings become GatherBlockQuantized; null leaves them in float.</summary>
    public int? EmbeddingBits { get; init; }

    /// <summary>The head's bits come from <see cref="LinearSelection.LmHeadBits"/>; this pass quantizes what the selection leaves to it.</summary>
    public LinearSelection Selection { get; init; } = new();

    /// <summary>Elements per block along a row; halved for an embedding until ONNX Runtime's CPU and CUDA kernels read it alike.</summary>
    public int BlockSize { get; init; } = 128;

    public bool Symmetric { get; init; }

    /// <summary>MatMulNBits accuracy_level of the head.</summary>
    public int AccuracyLevel { get; init; }
}

/// <summary>Which vocabulary table a <see cref="QuantizedTable"/> describes.</summary>
public enum TableRole
{
    Embedding,
    LmHead,
}

/// <summary>
/// What the pass did with one table: its form, bits, block size, bytes before and after, the relative weight error
/// ||W - dequant||/||W||, and, for a tied head, whether it shares the embedding's quantized tensors (and why not).
/// </summary>
public sealed record QuantizedTable(TableRole Role, string Node, string Tensor, int Rows, int Width, string Op, int? Bits, int BlockSize,
    bool Symmetric, long BytesBefore, long BytesAfter, double? WeightError, string? SharedWith, string? Note)
{
    public bool Quantized => Bits is not null;
}

/// <summary>The embeddings and head pass' decisions (left in the pipeline's <see cref="AnalysisStore"/>).</summary>
public sealed record EmbeddingReport(IReadOnlyList<QuantizedTable> Tables)
{
    public long BytesBefore => Tables.Where(t => t.SharedWith is null).Sum(t => t.BytesBefore);

    public long BytesAfter => Tables.Where(t => t.SharedWith is null).Sum(t => t.BytesAfter);
}

/// <summary>
/// Quantizes the vocabulary tables (docs/architecture.md, "Quantized embeddings and LM head"): token-embedding Gathers
/// become com.microsoft GatherBlockQuantized over 4- or 8-bit row blocks, and the LM head the selection leaves to this
/// pass becomes MatMulNBits at its own bits (8 by default: a 4-bit head is the usual cause of a quantized model
/// repeating itself). A tied head at the embedding's bits shares its codes, scales and zero points: MatMulNBits reads
/// the codes as B, the Gather through a Reshape of the same initializer. Round-to-nearest, no calibration.
/// </summary>
public sealed class EmbeddingHeadPass : IGraphPass
{
    private readonly EmbeddingHeadOptions _options;

    public EmbeddingHeadPass(EmbeddingHeadOptions options)
    {
        if (options.EmbeddingBits is { } e && !RowBlockQuantizer.IsSupportedBits(e))
            throw new OnnxQuantException(null, $"--quantize-embeddings takes 4 or 8 (got {e})", ExitCode.Usage);
        if (options.Selection.LmHeadBits is { } h && !RowBlockQuantizer.IsSupportedBits(h))
            throw new OnnxQuantException(null, $"--lm-head-bits takes 4 or 8 (got {h})", ExitCode.Usage);
        if (!Int4QuantOptions.IsValidBlockSize(options.BlockSize))
            throw new ArgumentOutOfRangeException(nameof(options), options.BlockSize, "the block size must be a power of two from 16 to 256");
        _options = options;
    }

    public string Name => "embeddings";

    public PassResult Run(OnnxModel model, PassContext context)
    {
        var graph = model.Graph;
        var embeddings = TokenTables.Embeddings(graph);
        var heads = _options.Selection.LmHeadBits is null ? [] : TokenTables.Heads(graph, _options.Selection, embeddings);
        var tables = new List<QuantizedTable>();
        var packedEmbeddings = new Dictionary<string, (PackedRowBlocks Packed, RowBlocks Blocks, double Error)>(StringComparer.Ordinal);
        int step = 0, steps = (_options.EmbeddingBits is null ? 0 : embeddings.Count) + heads.Count;

        foreach (var embedding in _options.EmbeddingBits is null ? [] : embeddings)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            context.Progress?.Report(new PassProgress(Name, step++, steps, embedding.Table));
            int bits = _options.EmbeddingBits!.Value;
            long before = graph.GetInitializer(embedding.Table)!.ByteLength;
            if (GatherLayout(embedding.Width, bits, _options.BlockSize, _options.Symmetric, out string? note) is not { } layout)
            {
                tables.Add(new QuantizedTable(TableRole.Embedding, embedding.Gathers[0].Name, embedding.Table, embedding.Rows, embedding.Width,
                    "Gather", null, 0, false, before, before, null, null, note));
                continue;
            }
            var table = graph.GetInitializer(embedding.Table)!.ToFloats();
            var blocks = RowBlockQuantizer.Quantize(table, embedding.Rows, embedding.Width, bits, layout.BlockSize, layout.Symmetric, embedding.Type);
            // A tied head at the same bits reads the codes as MatMulNBits' B: store them in that shape once, reshape for the Gather.
            bool shared = heads.Any(h => h.TiedTo == embedding.Table && _options.Selection.LmHeadBits == bits);
            string baseName = FreeBaseName(graph, embedding.Table);
            var packed = shared ? RowBlockPacker.ForMatMulNBits(blocks, baseName) : RowBlockPacker.ForGather(blocks, baseName);
            AddInitializers(graph, packed);
            string data = packed.Data.Name;
            if (shared)
                data = AddReshape(graph, packed, embedding);
            foreach (var gather in embedding.Gathers)
            {
                var node = RowBlockPacker.GatherNode(packed, data, gather.Input[1], gather.Output[0], gather.Name);
                node.DocString = new Provenance($"embedding-{bits}bit", ProvenanceRole.Embedding, [embedding.Table]).Format();
                graph.ReplaceNode(gather, node);
            }
            double error = RelativeError(table, blocks);
            packedEmbeddings[embedding.Table] = (packed, blocks, error);
            tables.Add(new QuantizedTable(TableRole.Embedding, embedding.Gathers[0].Name, embedding.Table, embedding.Rows, embedding.Width,
                RowBlockPacker.GatherOp, bits, layout.BlockSize, layout.Symmetric, before, packed.Bytes, error, null, note));
        }

        foreach (var head in heads)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            context.Progress?.Report(new PassProgress(Name, step++, steps, head.Candidate.Name));
            tables.Add(RewriteHead(graph, head, packedEmbeddings));
        }
        context.Progress?.Report(new PassProgress(Name, steps, steps));
        context.Analyses.Set(new EmbeddingReport(tables));
        if (!tables.Any(t => t.Quantized))
            return PassResult.Unchanged with { Rows = tables.Select(Row).ToList() };
        graph.RemoveDeadNodes();
        graph.SortTopologically();
        model.EnsureOpset(Nodes.MicrosoftDomain, W4RewritePass.MicrosoftOpset);
        return new PassResult(true, tables.Select(Row).ToList())
        {
            Metrics = new Dictionary<string, double>
            {
                ["tables_quantized"] = tables.Count(t => t.Quantized),
                ["table_bytes_before"] = tables.Where(t => t.SharedWith is null).Sum(t => t.BytesBefore),
                ["table_bytes_after"] = tables.Where(t => t.SharedWith is null).Sum(t => t.BytesAfter),
            },
        };
    }

    private QuantizedTable RewriteHead(Graph graph, LmHead head, Dictionary<string, (PackedRowBlocks Packed, RowBlocks Blocks, double Error)> embeddings)
    {
        int bits = _options.Selection.LmHeadBits!.Value;
        var c = head.Candidate;
        var node = c.Node;
        long before = graph.GetConstant(head.Chain.Root)?.ByteLength ?? 0;
        QuantizedTable Kept(string why) => new(TableRole.LmHead, c.Name, head.Chain.Root, c.N, c.K, node.OpType, null, 0, false, before, before, null, null, why);
        if (node.IsOnnx("Gemm") && (node.InputAt(2) is { Length: > 0 } || node.GetFloat("alpha", 1f) != 1f))
            return Kept("a Gemm head with a bias or alpha stays in float");
        if (head.Chain.DataType is not (TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Float16))
            return Kept($"{ElementType.Name(head.Chain.DataType)} weight");

        string? sharedWith = null, note = null;
        PackedRowBlocks packed;
        RowBlocks blocks;
        double error;
        if (head.TiedTo is { } table && embeddings.TryGetValue(table, out var e) && e.Blocks.Bits == bits)
        {
            (packed, blocks, sharedWith, error) = (e.Packed, e.Blocks, table, e.Error);
            note = $"tied: shares the embedding's {bits}-bit codes, scales and zero points";
        }
        else
        {
            // MatMulNBits quantizes the weight's columns along K: rows of Wᵀ, which for a tied head are the table's rows.
            var weight = head.Chain.Evaluate(graph, c.Name + "_weight");
            var rowsNK = ToRowsNK(weight.ToFloats(), c.K, c.N, transposed: node.IsOnnx("Gemm") && node.GetInt("transB", 0) != 0);
            blocks = RowBlockQuantizer.Quantize(rowsNK, c.N, c.K, bits, _options.BlockSize, _options.Symmetric, head.Chain.DataType);
            error = RelativeError(rowsNK, blocks);
            packed = RowBlockPacker.ForMatMulNBits(blocks, FreeBaseName(graph, head.Chain.Root + "_head"));
            AddInitializers(graph, packed);
            if (head.TiedTo is { } tied)
                note = embeddings.TryGetValue(tied, out var other)
                    ? $"tied, but the embedding is {other.Blocks.Bits}-bit and the head {bits}-bit: each has its own table"
                    : "tied, but the embedding stays in float: the head has its own quantized copy";
        }
        var replacement = RowBlockPacker.MatMulNBitsNode(packed, node.Input[0], node.Output[0], c.Name, _options.AccuracyLevel);
        replacement.DocString = new Provenance($"lm-head-{bits}bit", ProvenanceRole.Linear, [c.Name]).Format();
        graph.ReplaceNode(node, replacement);
        return new QuantizedTable(TableRole.LmHead, c.Name, head.Chain.Root, c.N, c.K, MatMulNBitsPacker.OpType, bits, blocks.BlockSize, blocks.Symmetric,
            before, sharedWith is null ? packed.Bytes : 0, error, sharedWith, note);
    }

    /// <summary>
    /// The block size and symmetry an embedding of this width gets, or null (and why) when none fits. Both of ONNX Runtime's
    /// kernels must read it alike: the CUDA kernel numbers blocks and packed zero points across the whole table, the CPU
    /// kernel per row, so rows must hold whole blocks and, with 4-bit zero points, an even number of them.
    /// </summary>
    public static (int BlockSize, bool Symmetric)? GatherLayout(int width, int bits, int requested, bool symmetric, out string? note)
    {
        note = null;
        for (int block = requested; block >= 16; block /= 2)
            if (width % block == 0 && (bits == 8 || symmetric || width / block % 2 == 0))
            {
                if (block != requested)
                    note = $"blocks of {block}: a {width}-wide row holds no even number of {requested}-blocks";
                return (block, symmetric);
            }
        for (int block = requested; block >= 16; block /= 2)
            if (width % block == 0)
            {
                note = $"symmetric blocks of {block}: {width / block} blocks per row cannot pack 4-bit zero points alike on CPU and CUDA";
                return (block, true);
            }
        note = $"kept in float: the width {width} is not a multiple of 16 (GatherBlockQuantized's smallest block)";
        return null;
    }

    private static float[] ToRowsNK(float[] weight, int k, int n, bool transposed)
    {
        if (transposed)
            return weight; // Gemm transB: stored [N, K] already
        var rows = new float[(long)n * k];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < n; j++)
                rows[(long)j * k + i] = weight[(long)i * n + j];
        return rows;
    }

    private static string AddReshape(Graph graph, PackedRowBlocks packed, TokenEmbedding embedding)
    {
        var shape = Tensor.FromInt64s(graph.UniqueValueName(embedding.Table + "_gather_shape"), [embedding.Rows, (long)embedding.Width * packed.Bits / 8], [2]);
        graph.SetInitializer(shape);
        string output = graph.UniqueValueName(embedding.Table + "_gather_codes");
        graph.AddNode(Nodes.Create("Reshape", [packed.Data.Name, shape.Name], [output], graph.UniqueNodeName(embedding.Table + "/ReshapeSharedCodes")));
        return output;
    }

    private static void AddInitializers(Graph graph, PackedRowBlocks packed)
    {
        foreach (var t in packed.Initializers)
        {
            graph.UniqueValueName(t.Name); // reserves the (free) name
            graph.SetInitializer(t);
        }
    }

    private static string FreeBaseName(Graph graph, string name)
    {
        string[] suffixes = ["_Q4", "_Q8", "_scales", "_zero_points"];
        for (int i = 0; ; i++)
        {
            string candidate = i == 0 ? name : $"{name}_{i}";
            if (suffixes.All(s => graph.GetInitializer(candidate + s) is null && graph.Producer(candidate + s) is null && !graph.IsGraphInput(candidate + s)))
                return candidate;
        }
    }

    private static double RelativeError(float[] table, RowBlocks q)
    {
        double error = 0, norm = 0;
        var row = new float[q.Width];
        for (int r = 0; r < q.Rows; r++)
        {
            q.DequantizeRow(r, row);
            for (int i = 0; i < q.Width; i++)
            {
                float w = table[(long)r * q.Width + i], d = w - row[i];
                error += d * d;
                norm += w * w;
            }
        }
        return norm > 0 ? Math.Sqrt(error / norm) : 0;
    }

    private static PassReportRow Row(QuantizedTable t) => new(t.Tensor, new Dictionary<string, string>
    {
        ["role"] = t.Role == TableRole.Embedding ? "embedding" : "LM head",
        ["shape"] = $"{t.Rows}x{t.Width}",
        ["form"] = t.Quantized ? $"{t.Op} {t.Bits}-bit, blocks of {t.BlockSize}{(t.Symmetric ? ", symmetric" : "")}" : "kept",
        ["bytes_before"] = t.BytesBefore.ToString(CultureInfo.InvariantCulture),
        ["bytes_after"] = t.BytesAfter.ToString(CultureInfo.InvariantCulture),
        ["note"] = t.Note ?? "-",
    });
}
