using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Analysis;

/// <summary>
/// How a linear's weight input reaches a constant: directly, or through a chain of shape and type steps on one constant
/// (Identity, Cast, Transpose, Reshape, Squeeze, Unsqueeze), as mixed-precision exports (fp16/bf16 storage cast up),
/// tied LM heads (the embedding transposed) and batched exports ([1, K, N] reshaped) write it. Every step is exact on
/// values, so <see cref="Evaluate"/> can fold the chain into one initializer that computes the same weight.
/// </summary>
public sealed class WeightChain
{
    private WeightChain(string root, IReadOnlyList<NodeProto> steps, DataType type, long[] shape)
    {
        Root = root;
        Steps = steps;
        DataType = type;
        Shape = shape;
    }

    /// <summary>The constant the chain starts from (an initializer or a Constant node's output).</summary>
    public string Root { get; }

    /// <summary>The steps from the root to the weight, in order; empty when the weight is the constant itself.</summary>
    public IReadOnlyList<NodeProto> Steps { get; }

    /// <summary>The weight's element type and shape after the last step.</summary>
    public DataType DataType { get; }

    public IReadOnlyList<long> Shape { get; }

    public bool IsDirect => Steps.Count == 0;

    /// <summary>"Cast", "Transpose -> Cast": the ops between the constant and the linear.</summary>
    public string Description => string.Join(" -> ", Steps.Select(s => s.OpType));

    /// <summary>What reaches a weight input: a constant chain, a dequantized integer weight, or a computed value.</summary>
    public static WeightSource Resolve(Graph graph, string value)
    {
        var steps = new List<NodeProto>();
        string current = value;
        for (int hops = 0; hops < 8; hops++)
        {
            if (graph.GetConstant(current) is { } constant)
            {
                steps.Reverse();
                return Build(graph, current, constant, steps);
            }
            var producer = graph.Producer(current);
            if (producer is null)
                return WeightSource.Computed;
            if (producer.IsOnnx("DequantizeLinear") || producer.IsMicrosoft("DequantizeLinear"))
                return producer.InputAt(0) is { } q && graph.GetConstant(q) is not null ? WeightSource.Dequantized : WeightSource.Computed;
            if (!IsStep(graph, producer))
                return WeightSource.Computed;
            steps.Add(producer);
            current = producer.Input[0];
        }
        return WeightSource.Computed;
    }

    private static bool IsStep(Graph graph, NodeProto node)
    {
        if (node.Output.Count != 1 || node.InputAt(0) is null)
            return false;
        return node.OpType switch
        {
            "Identity" or "Transpose" when node.IsOnnx(node.OpType) => true,
            "Cast" when node.IsOnnx("Cast") => IsFloat((DataType)node.GetInt("to", 0)),
            "Reshape" when node.IsOnnx("Reshape") => node.InputAt(1) is { } s && graph.GetConstant(s) is not null,
            "Squeeze" or "Unsqueeze" when node.IsOnnx(node.OpType) =>
                node.InputAt(1) is not { } axes || graph.GetConstant(axes) is not null,
            _ => false,
        };
    }

    private static bool IsFloat(DataType type) => type is DataType.Float or DataType.Float16 or DataType.Bfloat16;

    // Follows the steps on shape and type only; a step whose result cannot be known (bad perm, bad reshape) ends the chain as computed.
    private static WeightSource Build(Graph graph, string root, Tensor constant, List<NodeProto> steps)
    {
        var type = constant.DataType;
        var shape = constant.Shape.ToArray();
        foreach (var step in steps)
        {
            long[]? next = step.OpType switch
            {
                "Identity" or "Cast" => shape,
                "Transpose" => TransposedShape(shape, Perm(step, shape.Length)),
                "Reshape" => ReshapedShape(shape, graph.GetConstant(step.Input[1])!.ToInt64s(), step.GetInt("allowzero", 0) != 0),
                "Squeeze" => SqueezedShape(shape, Axes(graph, step)),
                "Unsqueeze" => UnsqueezedShape(shape, Axes(graph, step)),
                _ => null,
            };
            if (next is null)
                return WeightSource.Computed;
            shape = next;
            if (step.OpType == "Cast")
                type = (DataType)step.GetInt("to", 0);
        }
        return new WeightSource(WeightSourceKind.Constant, new WeightChain(root, steps, type, shape));
    }

    /// <summary>The weight's values after every step, as one tensor named <paramref name="name"/> (exact: each step only moves or re-types values).</summary>
    public Tensor Evaluate(Graph graph, string name)
    {
        var constant = graph.GetConstant(Root) ?? throw new InvalidOperationException($"weight root '{Root}' is no longer a constant");
        var type = constant.DataType;
        var shape = constant.Shape.ToArray();
        byte[] bytes = constant.RawBytes.ToArray();
        foreach (var step in Steps)
        {
            switch (step.OpType)
            {
                case "Cast":
                    var to = (DataType)step.GetInt("to", 0);
                    if (to != type)
                    {
                        var values = Tensor.FromBytes("", type, shape, bytes).ToFloats();
                        bytes = FloatCodec.Encode(values, to);
                        type = to;
                    }
                    break;
                case "Transpose":
                    var perm = Perm(step, shape.Length);
                    bytes = Permute(bytes, shape, perm, ElementType.SizeOf(type));
                    shape = TransposedShape(shape, perm)!;
                    break;
                case "Reshape":
                    shape = ReshapedShape(shape, graph.GetConstant(step.Input[1])!.ToInt64s(), step.GetInt("allowzero", 0) != 0)!;
                    break;
                case "Squeeze":
                    shape = SqueezedShape(shape, Axes(graph, step))!;
                    break;
                case "Unsqueeze":
                    shape = UnsqueezedShape(shape, Axes(graph, step))!;
                    break;
            }
        }
        return Tensor.FromBytes(name, type, shape, bytes);
    }

    private static int[] Perm(NodeProto node, int rank) =>
        node.GetInts("perm") is { Count: > 0 } p ? p.Select(x => (int)x).ToArray() : Enumerable.Range(0, rank).Reverse().ToArray();

    private static long[]? Axes(Graph graph, NodeProto node) =>
        node.InputAt(1) is { } axes ? graph.GetConstant(axes)?.ToInt64s() : node.GetInts("axes")?.ToArray();

    private static long[]? TransposedShape(long[] shape, int[] perm)
    {
        if (perm.Length != shape.Length || perm.Distinct().Count() != perm.Length || perm.Any(p => p < 0 || p >= shape.Length))
            return null;
        return perm.Select(p => shape[p]).ToArray();
    }

    private static long[]? ReshapedShape(long[] shape, long[] target, bool allowZero)
    {
        long count = ShapeMath.Count(shape);
        var result = new long[target.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < target.Length; i++)
        {
            long d = target[i] == 0 && !allowZero ? (i < shape.Length ? shape[i] : -2) : target[i];
            if (d == -1)
            {
                if (infer >= 0) return null;
                infer = i;
                continue;
            }
            if (d < 0) return null;
            result[i] = d;
            known *= d;
        }
        if (infer >= 0)
        {
            if (known == 0 || count % known != 0) return null;
            result[infer] = count / known;
        }
        return ShapeMath.Count(result) == count ? result : null;
    }

    private static long[]? SqueezedShape(long[] shape, long[]? axes)
    {
        if (axes is null)
            return shape.Where(d => d != 1).ToArray();
        var drop = axes.Select(a => a < 0 ? a + shape.Length : a).ToHashSet();
        if (drop.Any(a => a < 0 || a >= shape.Length || shape[a] != 1))
            return null;
        return shape.Where((_, i) => !drop.Contains(i)).ToArray();
    }

    private static long[]? UnsqueezedShape(long[] shape, long[]? axes)
    {
        if (axes is null)
            return null;
        int rank = shape.Length + axes.Length;
        var insert = axes.Select(a => a < 0 ? a + rank : a).ToHashSet();
        if (insert.Count != axes.Length || insert.Any(a => a < 0 || a >= rank))
            return null;
        var result = new long[rank];
        int from = 0;
        for (int i = 0; i < rank; i++)
            result[i] = insert.Contains(i) ? 1 : shape[from++];
        return result;
    }

    // Moves whole elements: out[i] = in[index of i under the inverse permutation].
    private static byte[] Permute(byte[] source, long[] shape, int[] perm, int elementSize)
    {
        if (shape.Length == 2 && perm[0] == 1)
            return elementSize switch
            {
                2 => Transpose2D<ushort>(source, (int)shape[0], (int)shape[1]),
                4 => Transpose2D<uint>(source, (int)shape[0], (int)shape[1]),
                8 => Transpose2D<ulong>(source, (int)shape[0], (int)shape[1]),
                _ => Transpose2D<byte>(source, (int)shape[0], (int)shape[1]),
            };
        int rank = shape.Length;
        var outShape = perm.Select(p => shape[p]).ToArray();
        var inStrides = new long[rank];
        long stride = 1;
        for (int d = rank - 1; d >= 0; d--)
        {
            inStrides[d] = stride;
            stride *= shape[d];
        }
        var result = new byte[source.Length];
        var index = new long[rank];
        long count = ShapeMath.Count(shape);
        for (long o = 0; o < count; o++)
        {
            long from = 0;
            for (int d = 0; d < rank; d++)
                from += index[d] * inStrides[perm[d]];
            Buffer.BlockCopy(source, (int)(from * elementSize), result, (int)(o * elementSize), elementSize);
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++index[d] < outShape[d]) break;
                index[d] = 0;
            }
        }
        return result;
    }
    // The common case (a tied head's [V, H] table read as [H, V]) in cache-friendly tiles.
    private static byte[] Transpose2D<T>(byte[] source, int rows, int cols) where T : unmanaged
    {
        var result = new byte[source.Length];
        ReadOnlySpan<T> from = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(source.AsSpan());
        Span<T> to = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(result.AsSpan());
        const int Tile = 32;
        for (int r0 = 0; r0 < rows; r0 += Tile)
            for (int c0 = 0; c0 < cols; c0 += Tile)
                for (int r = r0; r < Math.Min(rows, r0 + Tile); r++)
                    for (int c = c0; c < Math.Min(cols, c0 + Tile); c++)
                        to[c * rows + r] = from[r * cols + c];
        return result;
    }
}

public enum WeightSourceKind
{
    /// <summary>A constant, directly or through exact steps (<see cref="WeightSource.Chain"/>).</summary>
    Constant,
    /// <summary>DequantizeLinear of a constant integer tensor: the linear is already quantized.</summary>
    Dequantized,
    /// <summary>Computed from the graph's inputs (attention's q·kᵀ, a weight produced at run time).</summary>
    Computed,
}

/// <summary>What feeds a linear's weight input; <see cref="Chain"/> is set for <see cref="WeightSourceKind.Constant"/>.</summary>
public sealed record WeightSource(WeightSourceKind Kind, WeightChain? Chain)
{
    public static WeightSource Computed { get; } = new(WeightSourceKind.Computed, null);

    public static WeightSource Dequantized { get; } = new(WeightSourceKind.Dequantized, null);
}
