namespace OnnxQuant.Passes;

/// <summary>
/// The typed facts a pipeline carries between its passes (MLIR's analysis manager, reduced to what this pipeline needs):
/// calibration statistics and activation ranges go in before the run, passes read them and leave their reports. Passes
/// themselves hold no state, so one pass object can run on any number of models.
/// </summary>
public sealed class AnalysisStore
{
    private readonly Dictionary<Type, object> _items = new();

    public void Set<T>(T value) where T : class => _items[typeof(T)] = value;

    public T? Find<T>() where T : class => _items.TryGetValue(typeof(T), out var value) ? (T)value : null;

    /// <summary>The fact of type <typeparamref name="T"/>; a pass that needs one the pipeline was not given is a programming error.</summary>
    public T Get<T>(string pass) where T : class =>
        Find<T>() ?? throw new InvalidOperationException($"pass {pass} needs a {typeof(T).Name}, which this pipeline was not given");
}
