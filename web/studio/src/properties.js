// Qorgau's own properties of BPMN elements, as SpiffWorkflow's parser reads them:
// <bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name=".." value=".."/>
// A property without a value attribute makes the parser fail, and moddle drops undefined
// attributes: an emptied field therefore removes its property instead of keeping it empty.
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';

export function propertiesOf(bo, create) {
  let ext = bo.get('extensionElements');
  if (!ext) {
    if (!create) return null;
    return { missing: 'extensionElements' };
  }
  const props = (ext.get('values') || []).find((v) => is(v, 'spiffworkflow:Properties'));
  return props || (create ? { missing: 'properties', ext } : null);
}

export function getProperty(bo, name) {
  const props = propertiesOf(bo, false);
  if (!props) return '';
  const found = (props.get('properties') || []).find((p) => p.name === name);
  return found ? found.value || '' : '';
}

export function setProperty(element, bo, name, value, modeling, bpmnFactory) {
  value = (value || '').trim();
  let ext = bo.get('extensionElements');
  if (!ext) {
    if (!value) return;
    ext = bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
    ext.$parent = bo;
    modeling.updateModdleProperties(element, bo, { extensionElements: ext });
  }
  let props = (ext.get('values') || []).find((v) => is(v, 'spiffworkflow:Properties'));
  if (!props) {
    if (!value) return;
    props = bpmnFactory.create('spiffworkflow:Properties', { properties: [] });
    props.$parent = ext;
    modeling.updateModdleProperties(element, ext, { values: [...ext.get('values'), props] });
  }
  const list = props.get('properties') || [];
  const found = list.find((p) => p.name === name);
  if (!value) {
    if (found) {
      modeling.updateModdleProperties(element, props, {
        properties: list.filter((p) => p !== found),
      });
    }
    return;
  }
  if (found) {
    modeling.updateModdleProperties(element, found, { value });
    return;
  }
  const created = bpmnFactory.create('spiffworkflow:Property', { name, value });
  created.$parent = props;
  modeling.updateModdleProperties(element, props, { properties: [...list, created] });
}

// A lane's role: its name is a role code unless the process maps it (property role.<lane>).
export function processOfLane(bo) {
  let node = bo.$parent;
  while (node && !is(node, 'bpmn:Process')) node = node.$parent;
  return node || null;
}

export { getBusinessObject, is };
