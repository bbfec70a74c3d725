using System.Numerics.Tensors;
using OnnxQuant.IR;
using OnnxQuant.Quantization;

namespace OnnxQuant.Analysis;

/// <summary>
/// A linear's logical [K, N] weight as <see cref="IWeightTiles"/> for the streamed quantizers: a weight stored as such
/// (MatMul, or Gemm without transB and alpha) is decoded a tile at a time straight from its tensor, so the fp32 weight
/// never exists whole; a transposed or scaled one is read whole first.
/// </summary>
internal static class LinearWeightTiles
{
    public static IWeightTiles Of(Graph graph, LinearNode linear)
    {
        var tensor = graph.GetConstant(linear.WeightName) ?? throw new InvalidOperationException($"weight '{linear.WeightName}' of '{linear.Name}' is no longer a constant");
        if (linear.IsTransposed || linear.Alpha != 1f)
            return Int4PackedQuantizer.FromArray(linear.ReadWeightKN(graph), linear.N);
        return new TensorTiles(graph, linear, tensor);
    }

    private sealed class TensorTiles(Graph graph, LinearNode linear, IR.Tensor tensor) : IWeightTiles
    {
        public void ReadTile(int firstRow, int rowCount, int firstColumn, int columnCount, Span<float> destination)
        {
            var tile = destination[..(rowCount * columnCount)];
            tensor.DecodeTile((long)firstRow * linear.N + firstColumn, rowCount, columnCount, linear.N, tile);
            if (!TensorPrimitives.IsFiniteAll(tile))
                linear.ReadWeightKN(graph); // reads it whole to name the NaN/Inf count and position (throws)
        }

        // A band's mapped pages leave the resident set once its tiles are done.
        public void Done(int firstRow, int rowCount) => tensor.ReleaseRange((long)firstRow * linear.N, (long)rowCount * linear.N);
    }
}
