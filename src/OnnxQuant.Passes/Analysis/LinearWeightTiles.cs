using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Onnx;
using OnnxQuant.IR;
using OnnxQuant.Numerics;
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

    /// <summary>
    /// Columns 0, stride, 2·stride, ... of the linear's logical [K, N] weight (<see cref="ColumnSample.Take"/>'s values),
    /// read a band of rows at a time, so a search's sample never needs the whole fp32 weight (180 MB for a 7B MLP weight,
    /// two or three of which were the peak of `smooth`'s alpha search).
    /// </summary>
    public static float[] SampleColumns(Graph graph, LinearNode linear, int stride, out int columns)
    {
        int n = linear.N;
        if (stride <= 1)
        {
            columns = n;
            return linear.ReadWeightKN(graph);
        }
        int width = columns = ColumnSample.Columns(n, stride);
        var result = new float[(long)linear.K * width];
        ForEachBand(graph, linear, (r0, rows, band) =>
        {
            for (int r = 0; r < rows; r++)
                ColumnSample.TakeRow(band.AsSpan(r * n, n), result.AsSpan((r0 + r) * width, width), stride);
        });
        return result;
    }

    /// <summary>max_n |W[j, n]| of each row j of the logical [K, N] weight into <paramref name="rowMax"/> (kept where larger), a band at a time.</summary>
    public static void FoldRowAbsMax(Graph graph, LinearNode linear, float[] rowMax)
    {
        int n = linear.N;
        ForEachBand(graph, linear, (r0, rows, band) =>
        {
            for (int r = 0; r < rows; r++)
                rowMax[r0 + r] = MathF.Max(rowMax[r0 + r], MathF.Abs(TensorPrimitives.MaxMagnitude(band.AsSpan(r * n, n))));
        });
    }

    // Bands of whole rows, about 4 MB of fp32 each, in parallel; each band's mapped pages are released once it is read.
    private static void ForEachBand(Graph graph, LinearNode linear, Action<int, int, float[]> visit)
    {
        var tiles = Of(graph, linear);
        int k = linear.K, n = linear.N;
        int bandRows = Math.Clamp((1 << 20) / n, 1, k);
        int bands = (k + bandRows - 1) / bandRows;
        ParallelWork.Run(0, bands, -1, () => new float[bandRows * n], (b, buffer) =>
        {
            int r0 = b * bandRows, rows = Math.Min(bandRows, k - r0);
            tiles.ReadTile(r0, rows, 0, n, buffer.AsSpan(0, rows * n));
            visit(r0, rows, buffer);
            tiles.Done(r0, rows);
        });
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

        // fp16 storage: the maxima from the stored bits (HalfWidening.FoldMagnitudeBits), no fp32 tile. A NaN or an
        // infinity sorts above every finite half; the decoding read then names it (throws).
        public bool TryFoldColumnMaxMagnitude(int firstRow, int rowCount, Span<float> maxMagnitude, IReadOnlySet<int>? skipRows)
        {
            if (tensor.DataType != TensorProto.Types.DataType.Float16)
                return false;
            int n = linear.N;
            var bits = ArrayPool<ushort>.Shared.Rent(n);
            try
            {
                var maxima = bits.AsSpan(0, n);
                maxima.Clear();
                for (int r = firstRow; r < firstRow + rowCount; r++)
                {
                    if (skipRows is not null && skipRows.Contains(r))
                        continue;
                    if (!tensor.TryStoredRun((long)r * n, n, out var raw))
                        return false;
                    HalfWidening.FoldMagnitudeBits(MemoryMarshal.Cast<byte, ushort>(raw), maxima);
                }
                for (int j = 0; j < n; j++)
                {
                    if (maxima[j] >= 0x7C00)
                        linear.ReadWeightKN(graph); // throws, naming the NaN/Inf
                    maxMagnitude[j] = MathF.Max(maxMagnitude[j], (float)BitConverter.UInt16BitsToHalf(maxima[j]));
                }
                return true;
            }
            finally
            {
                ArrayPool<ushort>.Shared.Return(bits);
            }
        }

        // A band's mapped pages leave the resident set once its tiles are done.
        public void Done(int firstRow, int rowCount) => tensor.ReleaseRange((long)firstRow * linear.N, (long)rowCount * linear.N);
    }
}
